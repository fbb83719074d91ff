"""The held-out split every trainer shares: a hash of the item, the same under any rank
or worker count; training datasets over the split never yield a held-out item, and
read the training items with the dataset's guarantees (each once per epoch, exact resume).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_dataset import NUM_ITEMS, SHARD, make_items, write_store

from galaxy_hpc.data.augment import GalaxyAugment
from galaxy_hpc.data.dataset import StoreDataset
from galaxy_hpc.data.loader import StoreLoader
from galaxy_hpc.data.split import ItemSubset, Split, heldout_mask
from hpc.store import open_store


@pytest.fixture(scope="module")
def zarr_path(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("split") / "s.zarr", *make_items())


def test_mask_is_a_hash_of_the_item_alone():
    mask = heldout_mask(200_000, fraction=0.1, seed=0)
    assert abs(mask.mean() - 0.1) < 0.003  # the fraction is respected
    # Item i's fate does not depend on how many items there are (a store grown later
    # keeps its split) nor on anything but (seed, i).
    assert np.array_equal(mask[:1000], heldout_mask(1000, fraction=0.1, seed=0))
    assert not np.array_equal(mask[:1000], heldout_mask(1000, fraction=0.1, seed=1))
    # A larger fraction holds out a superset: raising it never moves an item into training.
    wider = heldout_mask(200_000, fraction=0.2, seed=0)
    assert np.all(wider[mask]) and abs(wider.mean() - 0.2) < 0.003
    assert not heldout_mask(1000, fraction=0.0, seed=0).any()
    # Pinned: the DINOv2 runs held out exactly these items before the split was shared.
    assert np.flatnonzero(heldout_mask(160, fraction=0.1, seed=0)).tolist() == [
        13, 20, 27, 39, 40, 48, 52, 56, 68, 89, 100, 113, 115, 118]
    with pytest.raises(ValueError, match="fraction"):
        heldout_mask(10, fraction=1.0, seed=0)


def test_split_is_disjoint_and_covers_the_store():
    split = Split.of(5000, fraction=0.25, seed=3)
    assert len(np.intersect1d(split.train, split.heldout)) == 0
    assert np.array_equal(np.sort(np.concatenate([split.train, split.heldout])),
                          np.arange(5000))
    assert np.array_equal(split.mask, heldout_mask(5000, fraction=0.25, seed=3))
    described = split.describe()
    assert described["num_heldout"] == len(split.heldout) and described["seed"] == 3


def test_item_subset_lays_out_shards_of_the_remaining_items(zarr_path):
    store = open_store(zarr_path)
    split = Split.of(len(store), fraction=0.3, seed=1)
    subset = ItemSubset(store, split.train)
    assert len(subset) == len(split.train)
    bounds = [subset.shard_bounds(j) for j in range(subset.num_shards)]
    assert bounds[0][0] == 0 and bounds[-1][1] == len(subset)
    assert all(a < b for a, b in bounds) and all(b == c for (_, b), (c, _) in
                                                  zip(bounds, bounds[1:]))
    a, b = bounds[2]
    rows = subset.store_index(np.arange(a, b))
    assert len(set(rows // SHARD)) == 1  # a subset shard lies in one store shard
    assert np.array_equal(subset.read_images(a, b), store.read_images_at(rows))
    with pytest.raises(ValueError, match="ascending"):
        ItemSubset(store, np.array([3, 2]))


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_training_batches_never_hold_a_heldout_item(zarr_path, world_size, num_workers):
    split = Split.of(NUM_ITEMS, fraction=0.2, seed=7)
    seen = []
    for rank in range(world_size):
        ds = StoreDataset(zarr_path, rank=rank, world_size=world_size, seed=5, batch_size=8,
                          items=split.train)
        loader = StoreLoader(ds, num_workers=num_workers)
        got = [i for batch in loader for i in batch["index"].tolist()]
        assert len(got) == len(ds)
        seen += got
    assert not set(seen) & set(split.heldout.tolist())
    assert sorted(seen) == split.train.tolist()  # every training item once per epoch


def test_subset_batches_are_the_store_items_and_resume_exactly(zarr_path):
    split = Split.of(NUM_ITEMS, fraction=0.2, seed=7)
    store = open_store(zarr_path)

    def build():
        ds = StoreDataset(zarr_path, rank=1, world_size=2, seed=11, batch_size=8,
                          drop_last=True, augment=GalaxyAugment(), caption_column="caption",
                          items=split.train)
        return StoreLoader(ds, num_workers=0)

    full = list(build())
    # Without augmentation, a batch's pixels are those of the store items it names.
    plain = StoreDataset(zarr_path, shuffle=False, batch_size=8, items=split.train)
    batch = next(iter(plain.batches()))
    assert batch["index"].tolist() == split.train[:8].tolist()
    want = np.stack([plain.stretch.forward(image)
                     for image in store.read_images_at(split.train[:8])])
    assert np.allclose(batch["pixel_values"].numpy(), want)
    head = build()
    taken = []
    for batch in head:
        taken.append(batch)
        if len(taken) == 4:
            state = head.state_dict()
            break
    resumed = build()
    resumed.load_state_dict(state)
    tail = list(resumed)
    for got, expected in zip(taken + tail, full, strict=True):
        assert torch.equal(got["index"], expected["index"])
        assert torch.equal(got["pixel_values"], expected["pixel_values"])
