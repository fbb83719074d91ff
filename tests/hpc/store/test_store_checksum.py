"""The checksum is about content only: not backend, shard size, codec or writer count."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from store_helpers import make_items, make_spec, store_path, write_shards, writer_worker

from hpc.store import create_store, finalize_store, open_store


def checksum_of(path, spec, images, columns):
    write_shards(create_store(path, spec, num_items=len(images)), images, columns)
    return finalize_store(path)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_same_content_same_checksum_across_layouts(tmp_path, dtype):
    images, columns = make_items(70, dtype)
    layouts = {
        "zarr-7": make_spec("zarr", dtype, 7),
        "zarr-64-gzip": make_spec("zarr", dtype, 64, compression="gzip"),
        "hdf5-7": make_spec("hdf5", dtype, 7),
        "hdf5-64": make_spec("hdf5", dtype, 64),
    }
    sums = {
        name: checksum_of(store_path(tmp_path, spec.backend, name), spec, images, columns)
        for name, spec in layouts.items()
    }
    assert len(set(sums.values())) == 1, sums


def test_checksum_sees_every_pixel_and_value(tmp_path):
    images, columns = make_items(8)
    base = checksum_of(store_path(tmp_path, "zarr", "a"), make_spec(), images, columns)
    pixel = images.copy()
    pixel[5, 2, 7, 7] ^= 1
    assert checksum_of(store_path(tmp_path, "zarr", "b"), make_spec(), pixel, columns) != base
    caption = {**columns, "caption": columns["caption"][:3] + ["x"] + columns["caption"][4:]}
    assert checksum_of(store_path(tmp_path, "zarr", "c"), make_spec(), images, caption) != base
    swapped = {**columns, "id": columns["id"][::-1]}
    assert checksum_of(store_path(tmp_path, "zarr", "d"), make_spec(), images, swapped) != base


def test_verify_finds_corrupted_data(tmp_path):
    """An image changed through h5py fails its crc32c on read; changed along with its
    crc32c (a consistent rewrite no chunk check can see), the item digests find it."""
    from hpc.store.hdf5_backend import CRC_DATASET, image_crcs

    path = store_path(tmp_path, "hdf5")
    images, columns = make_items(12)
    checksum_of(path, make_spec("hdf5"), images, columns)
    open_store(path).verify()
    with h5py.File(path.with_name(path.name + ".shards") / "shard-000001.h5", "r+") as shard:
        shard["images"][2, 0, 0, 0] = images[6, 0, 0, 0] ^ 0xFF
    store = open_store(path)
    with pytest.raises(ValueError, match=r"item 6: store.h5.shards/shard-000001.h5: fails "
                       r"its crc32c check"):
        store.verify()
    store.close()
    with h5py.File(path.with_name(path.name + ".shards") / "shard-000001.h5", "r+") as shard:
        shard[CRC_DATASET][...] = image_crcs(shard["images"][:])
    with pytest.raises(ValueError, match=r"shard 1 differs from its digests at items \[6\]"):
        open_store(path).verify()


@pytest.mark.parametrize("backend", ["zarr", "hdf5"])
def test_two_and_three_writer_processes_match_one(tmp_path, backend, spawn_pool):
    spec, num_items = make_spec(backend, shard_size=4), 50
    images, columns = make_items(num_items)
    single = checksum_of(store_path(tmp_path, backend, "one"), spec, images, columns)
    for world, race_create in ((2, False), (3, True)):
        path = store_path(tmp_path, backend, f"world{world}")
        if not race_create:
            create_store(path, spec, num_items=num_items)  # rank 0; the others open it
        jobs = [
            spawn_pool.submit(writer_worker, str(path), spec, num_items, rank, world, race_create)
            for rank in range(world)
        ]
        written = sorted(j for job in jobs for j in job.result())
        assert written == list(range(13))
        assert finalize_store(path) == single
        np.testing.assert_array_equal(open_store(path).read_images(), images)
