"""HDF5 files of arrays (Galaxy10's layout) and stacks saved either way round (NPY too)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from ingest_helpers import blob, ingest, reasons, rgb

from hpc.store import open_store

REPO = Path(__file__).resolve().parents[3]
NAMES = ["disturbed", "merging", "round smooth"]

# Run in a process that never imports galaxy_hpc: what a user's own h5py / zarr / PIL see
# in the store, against the source file cropped and resized by PIL independently.
PLAIN_CHECK = r"""
import json, sys
import h5py, numpy as np, zarr
from PIL import Image
source, store, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
with h5py.File(source, "r") as f:
    images, codes, redshift = f["images"][()], f["ans"][()], f["redshift"][()]
if store.endswith(".zarr"):
    group = zarr.open_group(store, mode="r")
    stored = group["images"][:]
    columns = {k: group["columns"][k][:] for k in ("id", "ans", "redshift", "label")}
else:
    with h5py.File(store, "r") as f:
        stored = f["images"][()]
        columns = {k: f["columns"][k][()] for k in ("id", "ans", "redshift", "label")}
text = lambda v: [x.decode() if isinstance(x, bytes) else str(x) for x in v]
rows = [int(i) for i in text(columns["id"])]
worst = 0
for k, row in enumerate(rows):
    h, w = images[row].shape[:2]
    s = min(h, w)
    box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
    mine = Image.fromarray(images[row]).resize((size, size), Image.Resampling.LANCZOS, box=box)
    expected = np.asarray(mine).transpose(2, 0, 1).astype(int)
    worst = max(worst, int(np.abs(stored[k].astype(int) - expected).max()))
print(json.dumps({"rows": rows, "worst": worst, "shape": list(stored.shape),
                  "ans": columns["ans"].tolist(), "codes": codes[rows].tolist(),
                  "label": text(columns["label"]),
                  "redshift": [None if np.isnan(v) else v for v in columns["redshift"].tolist()],
                  "redshift_in": [None if np.isnan(v) else v
                                  for v in redshift[rows].tolist()]}))
"""


def galaxy10_file(path: Path, n: int = 12, side: int = 40, codes=None) -> Path:
    """A Galaxy10_DECals.h5-shaped file: [n, H, W, 3] uint8 in gzip chunks + 1-D columns."""
    images = np.stack([rgb(side, side, i, sigma=3.0 + i % 5) for i in range(n)])
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, compression="gzip", chunks=(4, side, side, 3))
        f["ans"] = np.asarray(codes if codes is not None else np.arange(n) % 3, dtype=np.uint8)
        f["ra"] = np.linspace(10, 20, n)
        redshift = np.linspace(0.01, 0.2, n)
        redshift[::5] = np.nan  # Galaxy10 has galaxies of unknown redshift
        f["redshift"] = redshift
        f["pxscale"] = np.full(n, 0.262)
    return path


@pytest.mark.parametrize("backend", ["zarr", "hdf5"])
def test_a_galaxy10_file_goes_in_with_its_columns_and_named_classes(tmp_path, backend):
    source = galaxy10_file(tmp_path / "Galaxy10_DECals.h5", codes=[0, 1, 2, 7, 2, 1, 0, 0, 1,
                                                                    2, 2, 1])
    summary, store, rejects = ingest(
        tmp_path, source, backend=backend, size=24, captions=False,
        hdf5={"label_column": "ans", "label_names": NAMES})
    assert summary.kind == "hdf5" and summary.num_ingested == 11
    assert reasons(rejects) == {"Galaxy10_DECals.h5[3]": "bad_label"}  # code 7 has no name
    assert "ans=7 has no name" in rejects[0].reason
    assert store.spec.columns["ans"] == "int64" and store.spec.columns["label"] == "str"
    assert summary.notes["layout"] == "channels_last"
    out = tmp_path / ("store.zarr" if backend == "zarr" else "store.h5")
    plain = subprocess.run([sys.executable, "-c", PLAIN_CHECK, str(source), str(out), "24"],
                           capture_output=True, text=True, check=True)
    seen = json.loads(plain.stdout)
    assert seen["rows"] == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]
    assert seen["shape"] == [11, 3, 24, 24]
    assert seen["worst"] <= 1  # PIL's own Lanczos crop-and-resize of the source, to 1 level
    assert seen["ans"] == seen["codes"]
    assert seen["label"] == [NAMES[c] for c in seen["codes"]]
    assert seen["redshift"] == seen["redshift_in"] and seen["redshift"][0] is None


def test_the_shipped_galaxy10_config_runs_from_the_command_line(galaxy_hpc, tmp_path):
    source = galaxy10_file(tmp_path / "g10.h5", n=10, codes=np.arange(10))
    out = tmp_path / "g10.zarr"
    done = subprocess.run([galaxy_hpc, "ingest",
                           str(REPO / "configs/ingest/galaxy10_decals.yaml"), f"source={source}",
                           f"out={out}", "size=32", "--json"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["num_ingested"] == 10 and summary["num_rejected"] == 0
    labels = list(open_store(out).read_column("label"))
    assert labels[:3] == ["disturbed", "merging", "round smooth"]
    assert labels[-3:] == ["unbarred loose spiral", "edge-on without bulge", "edge-on with bulge"]


def test_float_stacks_keep_flux_whichever_way_round_they_were_saved(tmp_path):
    galaxies = np.stack([np.stack([blob(30, 30, flux=100.0 * (i + 1)), blob(30, 30, flux=10.0)])
                         for i in range(5)]).astype(np.float32)  # [n, 2, 30, 30]
    last = np.ascontiguousarray(galaxies.transpose(0, 2, 3, 1))  # [n, 30, 30, 2]
    np.save(tmp_path / "first.npy", galaxies)
    np.save(tmp_path / "last.npy", last)
    with h5py.File(tmp_path / "last.h5", "w") as f:
        f["cube/flux"] = last
        f["cube/z"] = np.arange(5) / 10
    reference = None
    for name, options in [("first.npy", {}), ("last.npy", {}),
                          ("last.h5", {"hdf5": {"columns": ["cube/z"],
                                                "rename": {"z": "redshift"}}})]:
        summary, store, _ = ingest(tmp_path, tmp_path / name, name=f"{name}.zarr", size=15,
                                   captions=False, **options)
        images = store.read_images()
        assert images.shape == (5, 2, 15, 15), name
        flux = images.astype(np.float64).sum(axis=(2, 3))
        np.testing.assert_allclose(flux[:, 0], [100, 200, 300, 400, 500], rtol=1e-5)
        np.testing.assert_allclose(flux[:, 1], 10.0, rtol=1e-5)
        reference = images if reference is None else reference
        np.testing.assert_array_equal(images, reference)  # the same pixels every way
    np.testing.assert_allclose(store.read_column("redshift"), np.arange(5) / 10)


def test_a_single_band_stack_is_one_band(tmp_path):
    np.save(tmp_path / "grey.npy", np.stack([blob(20, 20)] * 3).astype(np.float32))
    summary, store, _ = ingest(tmp_path, tmp_path / "grey.npy", size=20, captions=False)
    assert store.spec.image_shape == (1, 20, 20) and summary.notes["layout"] == "single_band"


def test_a_shape_that_could_be_either_way_round_is_refused_until_named(tmp_path):
    cube = np.zeros((3, 8, 12, 8), dtype=np.float32)  # 8 bands of 12 x 8, or 8 of 8 x 12?
    cube[:, :, 4:8, 2:6] = 1.0
    np.save(tmp_path / "cube.npy", cube)
    with pytest.raises(ValueError, match="cannot tell which axis.*npy.layout=channels_first"):
        ingest(tmp_path, tmp_path / "cube.npy", size=8, captions=False)
    summary, store, _ = ingest(tmp_path, tmp_path / "cube.npy", size=8, captions=False,
                               npy={"layout": "channels_last"})
    assert store.spec.image_shape == (8, 8, 8)


def test_files_that_are_not_what_they_should_be_say_what_to_change(tmp_path):
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"] = np.zeros((2, 8, 8, 3), np.uint8)
        f["b"] = np.zeros((2, 8, 8), np.float32)
        f["c"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"2 datasets of 3 or 4 axes \(a, b\).*hdf5.images"):
        ingest(tmp_path, tmp_path / "two.h5", captions=False)
    with pytest.raises(ValueError, match="hdf5.columns: .* has shape \\(3,\\), not one value"):
        ingest(tmp_path, tmp_path / "two.h5", captions=False,
               hdf5={"images": "a", "columns": ["c"]})
    with pytest.raises(ValueError, match="no dataset 'imgs'"):
        ingest(tmp_path, tmp_path / "two.h5", captions=False, hdf5={"images": "imgs"})
    with pytest.raises(ValueError, match="a uint8 stack of 5 bands"):
        np.save(tmp_path / "five.npy", np.zeros((2, 5, 16, 16), np.uint8))
        ingest(tmp_path, tmp_path / "five.npy", captions=False)
    with pytest.raises(ValueError, match="needs hdf5.label_names"):
        ingest(tmp_path, tmp_path / "two.h5", captions=False, hdf5={"label_column": "c"})
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="cannot read as an HDF5 file"):
        ingest(tmp_path, tmp_path / "junk.h5", captions=False)


def test_a_damaged_chunk_sets_aside_its_own_rows_and_no_others(tmp_path):
    source = galaxy10_file(tmp_path / "g10.h5", n=12)  # gzip chunks of 4 rows
    with h5py.File(source, "r") as f:
        info = f["images"].id.get_chunk_info(1)  # rows 4-7
    assert info.chunk_offset == (4, 0, 0, 0)
    with open(source, "r+b") as handle:
        handle.seek(info.byte_offset + 16)
        handle.write(b"\xff" * 64)  # the deflate stream of that chunk no longer inflates
    summary, store, rejects = ingest(tmp_path, source, size=16, captions=False)
    assert summary.num_ingested == 8
    assert reasons(rejects) == {f"g10.h5[{row}]": "unreadable" for row in (4, 5, 6, 7)}
    assert list(store.read_column("id")) == ["0", "1", "2", "3", "8", "9", "10", "11"]
