"""The zarrs (Rust) codec pipeline writes the same bytes and reads the same values as
zarr's own, and is never used where it would hang (after fork)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os

import numpy as np
import pytest
from store_helpers import make_items, make_spec, read_in_forked_child, store_path, write_shards

from hpc.store import create_store, finalize_store, open_store
from hpc.store.zarr_backend import ZARRS_ENV, ImagesArray


def file_digests(root):
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            rel = os.path.relpath(os.path.join(folder, name), root)
            if rel != "zarr.json":  # the group's attributes hold creation times
                out[rel] = hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
    return out


@pytest.mark.parametrize(
    "dtype, compression", [("uint8", "zstd"), ("uint8", "none"), ("float32", "gzip")]
)
def test_zarrs_and_zarr_write_identical_bytes_and_read_identical_values(
    tmp_path, monkeypatch, dtype, compression
):
    images, columns = make_items(23, dtype)
    images[5] = 0  # an all-fill chunk inside a shard: both must skip it the same way
    spec = make_spec(dtype=dtype, shard_size=8, compression=compression)
    paths = {}
    for flag in ("1", "0"):
        monkeypatch.setenv(ZARRS_ENV, flag)
        paths[flag] = store_path(tmp_path, "zarr", f"zarrs{flag}")
        write_shards(create_store(paths[flag], spec, num_items=23), images, columns)
        assert ImagesArray(paths[flag], "r").uses_zarrs is (flag == "1")
        finalize_store(paths[flag])
    same, other = file_digests(paths["1"]), file_digests(paths["0"])
    assert same.keys() == other.keys()
    if compression != "gzip":  # zarrs' deflate is another implementation than zlib's
        assert same == other
    for flag in ("1", "0"):  # each pipeline reads what the other wrote
        monkeypatch.setenv(ZARRS_ENV, flag)
        for path in paths.values():
            store = open_store(path)
            np.testing.assert_array_equal(store.read_images(), images)
            np.testing.assert_array_equal(
                store.read_images_at([22, 3, 3, 9]), images[[22, 3, 3, 9]]
            )


@pytest.mark.parametrize("backend", ["zarr", "hdf5"])
def test_forked_child_reads_after_the_parent_did(tmp_path, monkeypatch, backend):
    """A DataLoader with fork workers whose parent already read images: zarrs' thread pool
    does not survive fork (the child would hang), so the child falls back and says why."""
    monkeypatch.setenv(ZARRS_ENV, "1")
    path = store_path(tmp_path, backend)
    images, columns = make_items(12)
    write_shards(create_store(path, make_spec(backend), num_items=12), images, columns)
    finalize_store(path)
    store = open_store(path)
    store.read_images(0, 4)  # the parent opens its handles (and zarrs' thread pool)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=read_in_forked_child, args=(store, 4, 12, queue))
    child.start()
    got, messages = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, images[4:12])
    np.testing.assert_array_equal(store.read_images(8, 12), images[8:12])  # parent unaffected
    forked = any("forked after its parent read" in m for m in messages)
    assert forked is (backend == "zarr"), messages
