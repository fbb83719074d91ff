"""One FITS file per band (HSC's and Pan-STARRS's cutout services): grouped by object into
one multi-band image, the flux of every band kept, incomplete objects set aside."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from ingest_helpers import blob, ingest, reasons

# Plain astropy + zarr in a process that never imports galaxy_hpc: each stored band's
# total against the file the source column names for it.
PLAIN = r"""
import json, sys
import numpy as np, zarr
from astropy.io import fits
group = zarr.open_group(sys.argv[1], mode="r")
images = group["images"][:].astype(np.float64)
out = []
for k, source in enumerate(group["columns"]["source"][:]):
    files = str(source).split(";")
    out.append({"id": str(group["columns"]["id"][k]), "files": files,
                "stored": images[k].sum(axis=(1, 2)).tolist(),
                "source": [float(fits.getdata(f, "IMAGE").astype(np.float64).sum())
                           for f in files]})
print(json.dumps(out))
"""
BANDS = ["G", "R", "I"]


def hsc_cutout(folder, band: str, object_id: str, flux: float, side: int = 42,
               redshift: float = 0.1):
    """An HSC cutout-service file: an empty primary, then IMAGE and MASK HDUs."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"cutout-HSC-{band}-{object_id}.fits"
    image = blob(side, side, flux=flux, sigma=3.0).astype(np.float32)
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({"Z": redshift})),
                  fits.ImageHDU(image, name="IMAGE"),
                  fits.ImageHDU(np.zeros((side, side), np.int32), name="MASK")]).writeto(path)
    return path


def test_each_object_is_its_bands_in_order_with_every_band_flux_kept(tmp_path):
    folder = tmp_path / "hsc"
    for i in range(4):
        for j, band in enumerate(BANDS):
            hsc_cutout(folder, band, f"9813-{i}", flux=10.0 * (i + 1) + j, redshift=0.1 * i)
    hsc_cutout(folder, "I", "9813-9", 5.0)  # an object with one band only
    hsc_cutout(folder, "Z", "9813-0", 5.0)  # a band nobody asked for
    hsc_cutout(folder, "G", "9813-7", 5.0, side=40)
    hsc_cutout(folder, "R", "9813-7", 5.0, side=42)  # bands of two shapes
    hsc_cutout(folder, "I", "9813-7", 5.0)
    summary, store, rejects = ingest(
        tmp_path, folder, size=21, captions=False,
        fits={"bands": BANDS, "band_pattern": "cutout-HSC-{band}-{id}", "hdu": "IMAGE",
              "header_keys": ["Z"]})
    assert summary.num_ingested == 4
    assert {r.id or r.source.rsplit("/", 1)[-1]: r.category for r in rejects} == {
        "9813-9": "missing_band", "cutout-HSC-Z-9813-0.fits": "not_a_band_file",
        "9813-7": "wrong_shape"}
    assert store.spec.image_shape == (3, 21, 21)
    np.testing.assert_allclose(store.read_column("Z"), [0.0, 0.1, 0.2, 0.3])
    seen = json.loads(subprocess.run([sys.executable, "-c", PLAIN,
                                      str(tmp_path / "store.zarr")],
                                     capture_output=True, text=True, check=True).stdout)
    assert [s["id"] for s in seen] == [f"9813-{i}" for i in range(4)]
    for i, record in enumerate(seen):
        assert [f.rsplit("/", 1)[1] for f in record["files"]] == [
            f"cutout-HSC-{b}-9813-{i}.fits" for b in BANDS]
        np.testing.assert_allclose(record["stored"], record["source"], rtol=1e-5)
        np.testing.assert_allclose(record["stored"], [10.0 * (i + 1) + j for j in range(3)],
                                   rtol=1e-3)


def test_the_default_pattern_and_a_duplicate_band_file(tmp_path):
    folder = tmp_path / "ps1"
    for band in ("g", "r"):
        for i in range(2):
            path = folder / f"obj_{i}_{band}.fits"  # ids with "_" in them: obj_0, obj_1
            folder.mkdir(exist_ok=True)
            fits.PrimaryHDU(blob(16, 16, flux=1.0).astype(np.float32)).writeto(path)
    (folder / "obj_0_g.fits.gz").write_bytes(b"")  # a second file for the same band
    summary, store, rejects = ingest(tmp_path, folder, size=16, captions=False,
                                     fits={"bands": ["g", "r"]})
    assert list(store.read_column("id")) == ["obj_0", "obj_1"]
    assert reasons(rejects) == {"obj_0_g.fits.gz": "duplicate_id"}


def test_band_options_that_cannot_work_say_so(tmp_path):
    fits.PrimaryHDU(np.ones((8, 8), np.float32)).writeto(tmp_path / "a.fits")
    with pytest.raises(ValueError, match="no object has a file for every band"):
        ingest(tmp_path, tmp_path / "a.fits", captions=False, fits={"bands": ["g", "r"]})
    with pytest.raises(ValueError, match=r"band_pattern must hold \{band\} once"):
        ingest(tmp_path, tmp_path / "a.fits", captions=False,
               fits={"bands": ["g"], "band_pattern": "{id}"})
    with pytest.raises(ValueError, match="fits.bands must be distinct"):
        ingest(tmp_path, tmp_path / "a.fits", captions=False, fits={"bands": ["g", "g"]})
