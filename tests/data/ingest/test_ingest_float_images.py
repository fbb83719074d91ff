"""Float images (TIFF of flux, PIL mode F) are measurements: a folder of them becomes a
flux store, never 8-bit pictures of clipped, black pixels."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from ingest_helpers import blob, ingest, reasons, rgb, write_image, write_jsonl
from PIL import Image

# Read by plain zarr in a process that never imports galaxy_hpc, against the TIFF files
# summed by PIL: the flux each image holds.
PLAIN = r"""
import json, sys
import numpy as np, zarr
from PIL import Image
group = zarr.open_group(sys.argv[1], mode="r")
images, sources = group["images"][:], [str(s) for s in group["columns"]["source"][:]]
print(json.dumps({"dtype": str(images.dtype), "shape": list(images.shape),
                  "stored": images.astype(np.float64).sum(axis=(1, 2, 3)).tolist(),
                  "source": [float(np.asarray(Image.open(s), np.float64).sum())
                             for s in sources]}))
"""


def float_tiff(path, flux: float, side: int = 40):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(blob(side, side, flux=flux, sigma=3.0).astype(np.float32), "F").save(path)
    return path


def test_a_folder_of_float_tiffs_is_a_flux_store_with_the_flux_kept(tmp_path):
    fluxes = [0.02, 0.5, 3.0, 125.0]  # nanomaggies: all of it below one 8-bit level or not
    for i, flux in enumerate(fluxes):
        float_tiff(tmp_path / "cutouts" / f"g{i}.tif", flux)
    summary, store, rejects = ingest(tmp_path, tmp_path / "cutouts", size=20, captions=False)
    assert summary.num_ingested == 4 and rejects == []
    assert summary.notes["pixels"].startswith("float")
    seen = json.loads(subprocess.run([sys.executable, "-c", PLAIN, str(tmp_path / "store.zarr")],
                                     capture_output=True, text=True, check=True).stdout)
    assert seen["dtype"] == "float32" and seen["shape"] == [4, 1, 20, 20]
    np.testing.assert_allclose(seen["stored"], seen["source"], rtol=1e-5)
    np.testing.assert_allclose(seen["stored"], fluxes, rtol=1e-4)
    assert store.spec.columns.get("nonfinite_pixels") == "int64"  # as for FITS


def test_the_other_kind_of_image_in_a_folder_is_set_aside(tmp_path):
    folder = tmp_path / "cutouts"
    for i in range(3):
        float_tiff(folder / f"a{i}.tif", 1.0 + i)
    write_image(folder / "b_picture.png", rgb(40, 40, 1))  # one among floats: set aside
    summary, _, rejects = ingest(tmp_path, folder, size=20, captions=False,
                                 folder={"extensions": [".tif", ".png"]})
    assert summary.num_ingested == 3
    assert reasons(rejects) == {"b_picture.png": "pixel_type"}


def test_mixed_kinds_among_the_first_images_are_refused(tmp_path):
    folder = tmp_path / "mixed"
    float_tiff(folder / "a.tif", 1.0)
    write_image(folder / "b.png", rgb(40, 40, 1))
    with pytest.raises(ValueError, match=r"as many float \(PIL mode F\) as 8-bit images"):
        ingest(tmp_path, folder, size=20, captions=False)


def test_a_float_image_listed_in_a_manifest_of_pictures_is_a_reject_not_black(tmp_path):
    write_image(tmp_path / "pic.png", rgb(40, 40, 2))
    float_tiff(tmp_path / "flux.tif", 2.0)
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"path": "pic.png", "caption": "a galaxy"},
                                                  {"path": "flux.tif", "caption": "a galaxy"}])
    summary, store, rejects = ingest(tmp_path, manifest, size=20)
    assert summary.num_ingested == 1 and store.spec.image_dtype == "uint8"
    assert reasons(rejects) == {"flux.tif": "pixel_type"}
    assert "float image (PIL mode F, 40x40)" in rejects[0].reason
