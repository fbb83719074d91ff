"""Staging parts of unknown size, then compaction by one or several processes."""

from __future__ import annotations

import numpy as np
import pytest
from store_helpers import compact_worker, make_spec, part_items, part_worker, store_path

from hpc.store import (
    compact_staging,
    finalize_store,
    open_staging,
    open_store,
    remove_staging,
    staging_path,
)

COUNTS = [5, 0, 9, 3, 0, 11, 2, 0]  # 30 items; empty parts first, inside and last


def expected(spec):
    items = list(part_items(COUNTS, spec))
    images = np.concatenate([im for im, _ in items])
    ids = [i for _, cols in items for i in cols["id"]]
    return images, ids


@pytest.mark.parametrize("backend", ["zarr", "hdf5"])
def test_one_process_stages_and_compacts(tmp_path, backend):
    spec = make_spec(backend, shard_size=4)
    path = store_path(tmp_path, backend)
    staging = open_staging(path, spec)
    assert staging.root == staging_path(path) and staging.completed_parts() == set()
    for part, (images, columns) in enumerate(part_items(COUNTS, spec)):
        staging.write_part(part, images, columns)
    assert staging.part_counts() == dict(enumerate(COUNTS))
    assert compact_staging(path) == list(range(8))
    assert compact_staging(path) == []  # re-running is harmless
    checksum = finalize_store(path)
    store = open_store(path)
    images, ids = expected(spec)
    assert len(store) == 30 and store.checksum == checksum
    np.testing.assert_array_equal(store.read_images(), images)
    assert store.read_column("id").tolist() == ids
    store.verify()
    remove_staging(path)
    assert not staging_path(path).exists()
    assert compact_staging(path) == []  # after clean-up too


def test_two_processes_give_the_same_store_as_one(tmp_path, spawn_pool):
    spec = make_spec("zarr", shard_size=4)
    one = store_path(tmp_path, "zarr", "one")
    staging = open_staging(one, spec)
    for part, (images, columns) in enumerate(part_items(COUNTS, spec)):
        staging.write_part(part, images, columns)
    compact_staging(one, 0, 1)
    reference = finalize_store(one)

    two = store_path(tmp_path, "zarr", "two")
    for job in [
        spawn_pool.submit(part_worker, str(two), spec, COUNTS, rank, 2) for rank in range(2)
    ]:
        job.result()
    assert open_staging(two, spec).part_counts() == dict(enumerate(COUNTS))
    written = [spawn_pool.submit(compact_worker, str(two), rank, 2) for rank in range(2)]
    assert [job.result() for job in written] == [[0, 2, 4, 6], [1, 3, 5, 7]]
    assert finalize_store(two) == reference
    assert open_store(two).attrs == {"stage": "compacted"}
    np.testing.assert_array_equal(open_store(two).read_images(), expected(spec)[0])


def test_killed_part_is_not_complete_and_rewrite_replaces(tmp_path):
    spec = make_spec()
    path = store_path(tmp_path, "zarr")
    staging = open_staging(path, spec)
    items = list(part_items([4, 6], spec))
    staging.write_part(0, *items[0])
    (staging.root / ".part-00000001.writing-dead").mkdir()  # what a killed writer leaves
    assert staging.completed_parts() == {0}
    staging.write_part(0, *items[1])
    assert staging.part_counts() == {0: 6}


def test_staging_rejects_other_spec_and_bad_input(tmp_path):
    path = store_path(tmp_path, "zarr")
    staging = open_staging(path, make_spec())
    with pytest.raises(ValueError, match="holds parts of another spec.*shard_size: 4 != 8"):
        open_staging(path, make_spec(shard_size=8))
    images, columns = next(part_items([3], make_spec()))
    with pytest.raises(ValueError, match="part 2: missing column.* spiral"):
        staging.write_part(2, images, {k: v for k, v in columns.items() if k != "spiral"})
    with pytest.raises(ValueError, match="part_id must be a non-negative integer"):
        staging.write_part(-1, images, columns)
    with pytest.raises(ValueError, match="need 0 <= rank < world_size"):
        compact_staging(path, 2, 2)
    with pytest.raises(ValueError, match="not finalized"):
        staging.write_part(0, images, columns)
        compact_staging(path)
        remove_staging(path)
