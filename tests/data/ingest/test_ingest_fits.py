"""FITS cutouts: float32 flux, bands as channels, header keys as columns, bad files set aside."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from ingest_helpers import blob, ingest, reasons, truncate, write_fits


def noisy(shape, seed, flux=1000.0):
    rng = np.random.default_rng(seed)
    bands, height, width = shape
    return np.stack([blob(height, width, flux=flux * (b + 1)) for b in range(bands)]) \
        + rng.normal(0, 0.01, shape)


@pytest.mark.parametrize("backend", ["zarr", "hdf5"])
def test_bands_header_keys_and_rejects(tmp_path, backend):
    src = tmp_path / "cutouts"
    for i in range(4):
        header = {"EXPTIME": 53.9 + i, "FILTER": "gri", "SKYSUB": True}
        if i == 2:
            del header["EXPTIME"]  # a missing key: NaN, counted
        write_fits(src / f"obj{i}.fits", noisy((3, 40, 40), i).astype(np.float32), header)
    write_fits(src / "obj4.fits.gz", noisy((3, 40, 40), 4), {"EXPTIME": 7, "FILTER": "gri"})
    write_fits(src / "twoband.fits", noisy((2, 40, 40), 5).astype(np.float32))
    write_fits(src / "empty.fits", np.full((3, 40, 40), np.nan, dtype=np.float32))
    truncate(write_fits(src / "cut.fits", noisy((3, 40, 40), 6).astype(np.float32)))
    summary, store, rejects = ingest(tmp_path, src, backend=backend, size=40, shard_size=2,
                                     fits={"header_keys": ["EXPTIME", "FILTER", "SKYSUB"]})
    assert summary.kind == "fits" and summary.exit_code == 3
    assert list(store.read_column("id")) == ["obj0", "obj1", "obj2", "obj3", "obj4"]
    assert reasons(rejects) == {"twoband.fits": "band_count", "empty.fits": "all_nan",
                                "cut.fits": "truncated"}
    assert store.spec.image_shape == (3, 40, 40) and store.spec.image_dtype == "float32"
    assert store.spec.columns["EXPTIME"] == "float64" and store.spec.columns["FILTER"] == "str"
    exptime = store.read_column("EXPTIME")
    np.testing.assert_array_equal(exptime[[0, 1, 3, 4]], [53.9, 54.9, 56.9, 7.0])
    assert np.isnan(exptime[2])
    skysub = store.read_column("SKYSUB")  # FITS T -> 1.0; obj4 has none
    assert list(skysub[:4]) == [1.0] * 4 and np.isnan(skysub[4])
    assert summary.notes["missing_header_values"] == {"EXPTIME": 1, "SKYSUB": 1}
    # size == side: the flux is copied, not resampled (float32 in, float32 out)
    np.testing.assert_array_equal(store.read_images(1, 2)[0],
                                  fits.getdata(src / "obj1.fits").astype(np.float32))


def test_bscale_bzero_applied_and_extension_hdu(tmp_path):
    src = tmp_path / "cutouts"
    src.mkdir()
    hdu = fits.PrimaryHDU(noisy((1, 32, 32), 0)[0] * 10)
    hdu.scale("int16", bscale=0.01, bzero=5.0)  # stored as integers, read back as flux
    hdu.writeto(src / "scaled.fits")
    physical = fits.getdata(src / "scaled.fits")
    assert physical.dtype.kind == "f"
    write_fits(src / "ext.fits", noisy((1, 32, 32), 1)[0], {"AIRMASS": 1.2}, extension=True)
    summary, store, _ = ingest(tmp_path, src, size=32, fits={"header_keys": ["AIRMASS"]})
    assert summary.num_ingested == 2 and store.spec.image_shape == (1, 32, 32)
    np.testing.assert_allclose(store.read_images(1, 2)[0, 0], physical, rtol=0, atol=1e-6)
    assert np.isnan(store.read_column("AIRMASS")[1]) and store.read_column("AIRMASS")[0] == 1.2
    # an HDU asked for by name: the primary HDU of scaled.fits has no EXTNAME SCI
    summary, store, rejects = ingest(tmp_path, src, size=32, name="sci.zarr",
                                     fits={"hdu": "SCI"})
    assert summary.num_ingested == 1 and reasons(rejects) == {"scaled.fits": "no_image_hdu"}


@pytest.mark.parametrize("size", [24, 64])  # shrink by 8/3 and enlarge by 2
def test_total_flux_is_kept(tmp_path, size):
    data = noisy((2, 32, 32), 3)
    write_fits(tmp_path / "in" / "a.fits", data)
    _, store, _ = ingest(tmp_path, tmp_path / "in", size=size)
    out = store.read_images()[0].astype(np.float64)
    np.testing.assert_allclose(out.sum(axis=(1, 2)), data.sum(axis=(1, 2)), rtol=1e-5)
    _, store, _ = ingest(tmp_path, tmp_path / "in", size=size, name="sb.zarr",
                         flux="surface_brightness")
    mean = store.read_images()[0].astype(np.float64).mean(axis=(1, 2))
    np.testing.assert_allclose(mean, data.mean(axis=(1, 2)), rtol=1e-5)


def test_off_square_cutout_stays_centred_and_nan_pixels_stay_local(tmp_path):
    data = blob(40, 70, sigma=3.0)  # centred in a wide cutout
    data[0, 0] = np.nan  # a bad corner pixel is cropped away
    data[5, 40] = np.nan  # a bad pixel inside the crop
    write_fits(tmp_path / "in" / "wide.fits", data)
    _, store, _ = ingest(tmp_path, tmp_path / "in", size=20)
    image = store.read_images()[0, 0].astype(np.float64)
    assert store.read_column("crop_size")[0] == 40
    assert np.isnan(image).sum() == 1 and np.isnan(image[2, 12])  # (5, 40 - 15) / 2
    filled = np.nan_to_num(image)
    y, x = np.mgrid[:20, :20]
    assert abs((filled * y).sum() / filled.sum() - 9.5) < 0.05
    assert abs((filled * x).sum() / filled.sum() - 9.5) < 0.05


def test_partly_nan_images_are_counted_noted_and_never_silent(galaxy_hpc, tmp_path):
    import csv
    import subprocess

    src = tmp_path / "cutouts"
    clean = noisy((1, 32, 32), 0).astype(np.float32)
    write_fits(src / "a.fits", clean)
    holes = clean.copy()
    holes[0, 3:5, 3:6] = np.nan  # 6 masked pixels
    holes[0, 20, 20] = np.inf
    write_fits(src / "b.fits", holes)
    write_fits(src / "c.fits", np.full((1, 32, 32), np.nan, dtype=np.float32))

    def run(name, *extra):
        out = tmp_path / name
        done = subprocess.run([galaxy_hpc, "ingest", str(src), *extra, "--out", str(out),
                               "--size", "32"], capture_output=True, text=True, timeout=300)
        return done, out

    done, out = run("keep.zarr")
    assert done.returncode == 3, done.stderr  # c.fits (no finite pixel) is still a reject
    from hpc.store import open_store

    store = open_store(out)
    assert list(store.read_column("id")) == ["a", "b"]
    assert store.read_column("nonfinite_pixels").tolist() == [0, 7]
    assert np.isnan(store.read_images(1, 2)).sum() == 6  # kept as they are
    assert store.column_info("nonfinite_pixels")["description"].startswith("NaN or infinite")
    notes = list(csv.DictReader(open(f"{out}.notes.csv")))
    assert notes == [{"source": str(src / "b.fits"), "id": "b",
                      "note": "nonfinite_pixels: 7 of 1024 values are NaN or infinite; "
                              "kept (nonfinite=keep)"}]
    assert (f"1 image(s) with NaN or infinite pixels (kept as they are; counted in column "
            f"nonfinite_pixels): see {out}.notes.csv") in done.stdout
    assert "all_nan 1" in done.stdout
    assert store.attrs["counts"]["noted"] == 1

    done, out = run("zero.zarr", "nonfinite=zero")
    store = open_store(out)
    assert store.read_column("nonfinite_pixels").tolist() == [0, 7]
    assert np.isfinite(store.read_images()).all() and store.read_images(1, 2)[0, 0, 3, 3] == 0
    assert "set to 0" in done.stdout

    done, out = run("reject.zarr", "nonfinite=reject")
    assert done.returncode == 3 and list(open_store(out).read_column("id")) == ["a"]
    rejected = {r["id"]: r["reason"] for r in csv.DictReader(open(f"{out}.rejects.csv"))}
    assert rejected == {"b": "some_nonfinite: 7 of 1024 values are NaN or infinite",
                        "c": "all_nan: none of the 1024 pixels is finite"}
    assert not (tmp_path / "reject.zarr.notes.csv").exists()


# Plain zarr + astropy, in a process that never imports galaxy_hpc: each stored image
# against what astropy decompresses from the file its source column names.
PLAIN_FZ = r"""
import json, sys
import numpy as np, zarr
from astropy.io import fits
group = zarr.open_group(sys.argv[1], mode="r")
images = group["images"][:]
print(json.dumps({str(group["columns"]["id"][k]): bool(np.array_equal(
    images[k, 0], fits.getdata(str(source)).astype(np.float32)))
    for k, source in enumerate(group["columns"]["source"][:])}))
"""


def test_fpack_compressed_cutouts_are_fits(tmp_path):
    """DES, HSC and DECam cutouts come fpack'd (`x.fits.fz`: an empty primary, the image
    tile-compressed in HDU 1). A folder of them was "no FITS files and no images"."""
    src = tmp_path / "des"
    src.mkdir()
    for i, compression in enumerate(["RICE_1", "GZIP_2", "HCOMPRESS_1"]):
        image = fits.CompImageHDU(noisy((1, 36, 36), i)[0].astype(np.float32),
                                  compression_type=compression)
        image.header["MAG_R"] = 19.5 + i
        fits.HDUList([fits.PrimaryHDU(), image]).writeto(src / f"DES{i:04d}.fits.fz")
    summary, store, _ = ingest(tmp_path, src, size=36, fits={"header_keys": ["MAG_R"]})
    assert summary.kind == "fits" and summary.num_ingested == 3
    assert list(store.read_column("id")) == ["DES0000", "DES0001", "DES0002"]
    assert list(store.read_column("MAG_R")) == [19.5, 20.5, 21.5]
    done = subprocess.run([sys.executable, "-c", PLAIN_FZ, str(tmp_path / "store.zarr")],
                          capture_output=True, text=True, timeout=120, cwd=src)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"DES0000": True, "DES0001": True, "DES0002": True}
