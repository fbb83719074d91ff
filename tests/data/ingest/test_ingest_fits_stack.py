"""One FITS file holding a stack of cutouts is many galaxies, not one of many bands.

A [200, 32, 32] file of stamps came out as one galaxy of 200 bands, exit 0. Each stored
image is checked against astropy's plane of the file, and the stamps' table HDU against
the store's columns, in a process that never imports galaxy_hpc."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from astropy.io import fits
from ingest_helpers import blob, ingest

from galaxy_hpc.cli.main import EXIT_ERROR, EXIT_REJECTS, main

PLAIN = r"""
import json, sys
import numpy as np, zarr
from astropy.io import fits
group = zarr.open_group(sys.argv[1], mode="r")
images, columns = group["images"][:], group["columns"]
with fits.open(sys.argv[2]) as hdul:
    stack = hdul[int(sys.argv[3])].data.astype(np.float32)
    table = hdul[-1].data if isinstance(hdul[-1], fits.BinTableHDU) else None
ids = [int(i) for i in columns["id"][:]]
planes = [stack[k] if stack.ndim == 4 else stack[k][None] for k in ids]
print(json.dumps({
    "ids": ids, "shape": list(images.shape),
    "equal": all(np.array_equal(images[j], planes[j]) for j in range(len(ids))),
    "z": None if table is None else bool(np.array_equal(columns["Z"][:], table["Z"][ids])),
    "galaxy_hpc": "galaxy_hpc" in sys.modules}))
"""


def plain(store, path, hdu: int) -> dict:
    done = subprocess.run([sys.executable, "-c", PLAIN, str(store), str(path), str(hdu)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert seen["galaxy_hpc"] is False
    return seen


def stamps(n: int, bands: int | None, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n, 32, 32) if bands is None else (n, bands, 32, 32)
    return (blob(32, 32, sigma=3.0) + rng.normal(0, 0.01, shape)).astype(np.float32)


def test_a_single_band_stack_with_its_table_hdu_is_one_galaxy_a_plane(tmp_path):
    path = tmp_path / "stamps.fits"
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="Z", format="D", array=np.linspace(0.01, 0.3, 40)),
        fits.Column(name="OBJID", format="K", array=np.arange(1000, 1040))])
    fits.HDUList([fits.PrimaryHDU(stamps(40, None)), table]).writeto(path)
    summary, store, _ = ingest(tmp_path, path, size=32)
    assert summary.num_ingested == 40 and store.spec.image_shape == (1, 32, 32)
    assert store.spec.columns["OBJID"] == "int64"
    seen = plain(tmp_path / "store.zarr", path, 0)
    assert seen["ids"] == list(range(40)) and seen["equal"] and seen["z"] is True


def test_a_four_axis_stack_keeps_its_bands(tmp_path):
    path = tmp_path / "grz.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(stamps(12, 3), name="STAMPS")]).writeto(path)
    summary, store, _ = ingest(tmp_path, path, size=32)
    assert summary.num_ingested == 12 and store.spec.image_shape == (3, 32, 32)
    seen = plain(tmp_path / "store.zarr", path, 1)
    assert seen["shape"] == [12, 3, 32, 32] and seen["equal"] and seen["z"] is None


def test_a_cube_of_few_planes_is_still_one_galaxys_bands(tmp_path):
    path = tmp_path / "legacy_cutout.fits"
    fits.PrimaryHDU(stamps(3, None)).writeto(path)  # g, r, z of one galaxy
    summary, store, _ = ingest(tmp_path, path, size=32)
    assert summary.num_ingested == 1 and store.spec.image_shape == (3, 32, 32)


def test_header_keys_of_a_stack_are_refused(tmp_path, capsys):
    path = tmp_path / "stamps.fits"
    fits.PrimaryHDU(stamps(30, None)).writeto(path)
    assert main(["ingest", str(path), "--out", str(tmp_path / "s.zarr"),
                 "--header-keys", "EXPTIME"]) == EXIT_ERROR
    assert "a stack of 30 cutouts" in capsys.readouterr().err


def test_a_truncated_stack_keeps_its_whole_stamps_and_lists_the_rest(tmp_path, capsys):
    """A stack cut short (a download that stopped): the stamps before the cut are stored,
    each one astropy's; the others are `truncated` rejects, and the exit status says so."""
    whole = tmp_path / "whole.fits"
    fits.PrimaryHDU(stamps(40, None)).writeto(whole)
    cut = tmp_path / "cut.fits"
    keep = 2880 + 25 * 32 * 32 * 4 + 100  # the header block, 25 whole stamps, a bit more
    cut.write_bytes(whole.read_bytes()[:keep])
    out = tmp_path / "store.zarr"
    assert main(["ingest", str(cut), "--out", str(out), "--size", "32", "--json"]) \
        == EXIT_REJECTS
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_ingested"] == 25 and summary["rejects_by_reason"] == {"truncated": 15}
    seen = plain(out, whole, 0)
    assert seen["ids"] == list(range(25)) and seen["equal"]
