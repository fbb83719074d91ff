"""Write, finalize, reopen and read back, in both backends; plain zarr / h5py see it too."""

from __future__ import annotations

import pickle
import warnings

import h5py
import numpy as np
import pytest
import zarr
from store_helpers import COLUMNS, make_items, make_spec, read_worker, store_path, write_shards

from hpc.store import create_store, finalize_store, open_store

BACKENDS = ["zarr", "hdf5"]


def build(
    tmp_path, backend, dtype="uint8", num_items=10, shard_size=4, name="store", attrs=None, **kw
):
    spec = make_spec(backend, dtype, shard_size, **kw)
    images, columns = make_items(num_items, dtype)
    path = store_path(tmp_path, backend, name)
    write_shards(create_store(path, spec, num_items=num_items, attrs=attrs), images, columns)
    checksum = finalize_store(path)
    return path, images, columns, checksum


def assert_columns_equal(store, columns):
    for name, dtype in COLUMNS.items():
        got = store.read_column(name)
        if dtype == "str":
            assert got.dtype == np.dtypes.StringDType()
            assert got.tolist() == list(columns[name])
        else:
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got, np.asarray(columns[name], dtype=dtype))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_round_trip(tmp_path, backend, dtype):
    attrs = {"command": "galaxy-hpc synth", "sources": ["a.fits", "b.fits"], "version": "0.1.0"}
    path, images, columns, checksum = build(tmp_path, backend, dtype, attrs=attrs)
    store = open_store(path)
    assert len(store) == 10 and store.num_shards == 3 and store.shard_bounds(2) == (8, 10)
    assert store.checksum == checksum and checksum.startswith("sha256:") and len(checksum) == 71
    assert store.attrs == attrs and store.columns == list(COLUMNS)
    read = store.read_images(0, 10)
    assert read.dtype == np.dtype(dtype) and read.shape == (10, 3, 8, 8)
    np.testing.assert_array_equal(read, images)
    np.testing.assert_array_equal(store.read_images(3, 9), images[3:9])
    assert_columns_equal(store, columns)
    store.verify()
    info = store.info()
    assert info["count"] == 10 and info["backend"] == backend and info["image_dtype"] == dtype
    assert info["columns"] == COLUMNS and info["num_shards"] == 3 and info["size_on_disk_bytes"] > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_access(tmp_path, backend):
    path, images, _, _ = build(tmp_path, backend, num_items=23, shard_size=5)
    store = open_store(path)
    for indices in ([7], [22, 0, 5, 5, 4, 13, 12], np.arange(23)[::-3], []):
        np.testing.assert_array_equal(
            store.read_images_at(indices), images[np.asarray(indices, dtype=int)]
        )
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 23\)"):
        store.read_images_at([3, 23])
    with pytest.raises(ValueError, match="read_images"):
        store.read_images(5, 24)
    with pytest.raises(ValueError, match="no column 'colour'.*columns: id, caption"):
        store.read_column("colour")


@pytest.mark.parametrize("backend", BACKENDS)
def test_store_pickles_and_reads_in_another_process(tmp_path, backend, spawn_pool):
    path, images, _, _ = build(tmp_path, backend)
    store = open_store(path)
    store.read_images(0, 2)  # open handles first: they must not travel
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone.read_images(4, 9), images[4:9])
    np.testing.assert_array_equal(spawn_pool.submit(read_worker, store, 2, 7).result(), images[2:7])


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_store(tmp_path, backend):
    path, _, _, checksum = build(tmp_path, backend, num_items=0)
    store = open_store(path)
    assert len(store) == 0 and store.num_shards == 0
    assert store.read_images().shape == (0, 3, 8, 8)
    assert store.read_column("caption").shape == (0,)
    other, _, _, other_checksum = build(
        tmp_path, "hdf5" if backend == "zarr" else "zarr", num_items=0, name="other"
    )
    assert other_checksum == checksum


def test_plain_zarr_opens_the_store_without_warnings(tmp_path):
    path, images, columns, _ = build(tmp_path, "zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        group = zarr.open_group(path, mode="r")
        assert sorted(name for name, _ in group.members(max_depth=None)) == sorted(
            ["images", "columns", "item_digests"] + [f"columns/{n}" for n in COLUMNS]
        )
    np.testing.assert_array_equal(group["images"][:], images)
    assert group["images"].chunks == (1, 3, 8, 8) and group["images"].shards == (4, 3, 8, 8)
    assert group["columns/caption"][:].tolist() == columns["caption"]
    assert group.attrs["hpc_store"]["complete"] is True
    np.testing.assert_array_equal(group["item_digests"][:], open_store(path).read_item_digests())


def test_plain_h5py_opens_one_master_file(tmp_path):
    path, images, columns, _ = build(tmp_path, "hdf5", dtype="float32")
    with h5py.File(path, "r") as master:
        assert master["images"].is_virtual
        np.testing.assert_array_equal(master["images"][:], images)
        assert master["columns/caption"].asstr()[:].tolist() == columns["caption"]
        np.testing.assert_array_equal(master["columns/spiral"][:], columns["spiral"])
        assert master["item_digests"].shape == (10, 32)


@pytest.mark.parametrize(
    "backend, compression", [("zarr", "gzip"), ("zarr", "none"), ("hdf5", "gzip")]
)
def test_other_codecs_round_trip(tmp_path, backend, compression):
    path, images, columns, _ = build(tmp_path, backend, compression=compression)
    store = open_store(path)
    np.testing.assert_array_equal(store.read_images(), images)
    assert store.spec.compression == compression
    assert_columns_equal(store, columns)
