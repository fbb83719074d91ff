"""evaluate.passes: batches read in shard-sized groups, yielded exactly as the batch grid
asks, whatever the group boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_hpc.evaluate.passes import rank_batches, read_batches, read_groups
from hpc.store import open_store


def test_batches_are_grouped_up_to_a_shard_and_the_byte_budget():
    bounds = [(0, 64), (64, 128), (128, 192), (192, 256), (256, 320), (320, 350)]
    groups = read_groups(bounds, shard_size=256, item_bytes=100)
    assert groups == [bounds[:4], bounds[4:]]
    assert read_groups(bounds, shard_size=256, item_bytes=100, budget=128 * 100) == [
        bounds[0:2], bounds[2:4], bounds[4:6]]
    # a batch larger than the budget or a shard is still read, alone
    assert read_groups([(0, 64), (64, 128)], shard_size=32, item_bytes=100) == [
        [(0, 64)], [(64, 128)]]
    # runs that are not contiguous are never read as one
    assert read_groups([(0, 10), (20, 30)], shard_size=256, item_bytes=1) == [
        [(0, 10)], [(20, 30)]]


class _CountingStore:
    """A real store that counts its reads."""

    def __init__(self, store):
        self.store, self.spec, self.reads = store, store.spec, []

    def read_images(self, start, stop):
        self.reads.append((start, stop))
        return self.store.read_images(start, stop)


@pytest.mark.parametrize("batch_size, rank, world", [(8, 0, 1), (10, 1, 3), (64, 0, 2)])
def test_read_batches_yields_each_batch_of_the_grid(stores, batch_size, rank, world):
    store = open_store(stores["real"])
    counting = _CountingStore(store)
    bounds = rank_batches(len(store), batch_size, rank, world)
    got = list(read_batches(counting, bounds))
    assert [(start, len(images)) for start, images in got] == [
        (a, b - a) for a, b in bounds]
    for (a, b), (_, images) in zip(bounds, got):
        np.testing.assert_array_equal(images, store.read_images(a, b))
    span = sum(b - a for a, b in bounds)
    assert len(counting.reads) <= max(1, -(-span // store.spec.shard_size)) + 1
