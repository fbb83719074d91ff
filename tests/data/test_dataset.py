"""StoreDataset and StoreLoader: every item once per epoch over ranks and workers, orders
from (seed, epoch), exact mid-epoch resume, captions, conditions and stretches.

Ranks are simulated in one process (rank and world_size are plain constructor
arguments); DataLoader workers are real forkserver processes."""

from __future__ import annotations

import itertools
import os
import warnings
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from galaxy_hpc.data import shards
from galaxy_hpc.data.augment import GalaxyAugment
from galaxy_hpc.data.captions import caption_tags
from galaxy_hpc.data.dataset import (StoreBatches, StoreDataset, collate_items,
                                     to_model_pixels)
from galaxy_hpc.data.loader import StoreLoader
from galaxy_hpc.data.stretch import AsinhStretch
from galaxy_hpc.data.synth import SynthConfig, draw_galaxies
from hpc.store import Store, StoreSpec, create_store, finalize_store

NUM_ITEMS, SHARD = 300, 32  # 10 shards, the last one of 12 items
TAGS = ["spiral galaxy", "barred galaxy", "dust lane", "merger", "ring galaxy"]


def write_store(path, images, columns, shard_size=SHARD, backend="zarr"):
    spec = StoreSpec(image_shape=images.shape[1:], image_dtype=str(images.dtype),
                     columns={k: _dtype(v) for k, v in columns.items()},
                     shard_size=shard_size, backend=backend)
    writer = create_store(path, spec, num_items=len(images))
    for shard in writer.pending_shards():
        a, b = writer.shard_bounds(shard)
        writer.write_shard(shard, images[a:b], {k: v[a:b] for k, v in columns.items()})
    finalize_store(path)
    return path


def _dtype(values) -> str:
    kind = np.asarray(values).dtype.kind
    return {"U": "str", "f": "float64", "i": "int64", "b": "bool"}[kind]


def make_items(count=NUM_ITEMS, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 3, 32, 32), dtype=np.uint8)
    captions = np.array(["sdss, " + ", ".join(rng.choice(TAGS, 3, replace=False))
                         for _ in range(count)])
    columns = {"caption": captions, "redshift": rng.uniform(0.02, 0.25, count),
               "log_stellar_mass": rng.uniform(9, 11.5, count),
               "n_arms": rng.integers(0, 5, count), "spiral": rng.random(count) < 0.5}
    return images, columns


@pytest.fixture(scope="module")
def items():
    return make_items()


@pytest.fixture(scope="module", params=["zarr", "hdf5"])
def store_path(request, tmp_path_factory, items):
    suffix = "zarr" if request.param == "zarr" else "h5"
    return write_store(tmp_path_factory.mktemp(request.param) / f"s.{suffix}", *items,
                       backend=request.param)


@pytest.fixture(scope="module")
def zarr_path(tmp_path_factory, items):
    return write_store(tmp_path_factory.mktemp("zarr") / "s.zarr", *items)


def indices(loader) -> list[int]:
    return [i for batch in loader for i in batch["index"].tolist()]


# -- coverage: every item once per epoch over ranks and workers ---------------------------


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_epoch_covers_every_item_once_over_ranks_and_workers(zarr_path, world_size,
                                                             num_workers):
    seen = []
    for rank in range(world_size):
        ds = StoreDataset(zarr_path, rank=rank, world_size=world_size, seed=5, batch_size=16)
        got = indices(StoreLoader(ds, num_workers=num_workers))
        assert len(got) == len(ds)
        seen += got
    assert sorted(seen) == list(range(NUM_ITEMS))


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_drop_last_gives_every_rank_the_same_full_batches(zarr_path, world_size, num_workers):
    per_rank = []
    for rank in range(world_size):
        ds = StoreDataset(zarr_path, rank=rank, world_size=world_size, seed=5, batch_size=16,
                          drop_last=True)
        loader = StoreLoader(ds, num_workers=num_workers)
        sizes = [len(b["index"]) for b in loader]
        assert sizes == [16] * len(loader)
        per_rank.append([i for b in loader for i in b["index"].tolist()])
    counts = {len(p) for p in per_rank}
    assert len(counts) == 1 and counts.pop() == NUM_ITEMS // world_size // 16 * 16
    everything = list(itertools.chain(*per_rank))
    assert len(set(everything)) == len(everything)  # no item on two ranks


def test_hdf5_and_zarr_read_the_same_items(store_path, items):
    images, columns = items
    ds = StoreDataset(store_path, rank=1, world_size=2, seed=1, batch_size=10,
                      condition_columns=["redshift"], pixel_range=(0.0, 1.0))
    seen = []
    for batch in StoreLoader(ds):
        idx = batch["index"].numpy()
        seen += idx.tolist()
        expected = torch.from_numpy(images[idx]).float() / 255.0
        torch.testing.assert_close(batch["pixel_values"], expected)
        np.testing.assert_allclose(batch["conditions"][:, 0], columns["redshift"][idx],
                                   rtol=1e-6)
    assert len(seen) == 150 and len(set(seen)) == 150


def test_more_ranks_and_workers_than_shards(tmp_path, items, monkeypatch):
    """3 shards, 4 ranks x 3 workers: still every item once (worker info simulated here;
    the tests above start real workers)."""
    import galaxy_hpc.data.dataset as dataset_module

    images, _ = items
    path = write_store(tmp_path / "small.zarr", images[:40], {}, shard_size=16)
    seen = []
    for rank, worker in itertools.product(range(4), range(3)):
        info = SimpleNamespace(id=worker, num_workers=3)
        monkeypatch.setattr(dataset_module, "get_worker_info", lambda info=info: info)
        ds = StoreDataset(path, rank=rank, world_size=4, batch_size=4)
        seen += [item["index"] for item in ds]
    assert sorted(seen) == list(range(40))


def collate_reporting_zarrs(items):
    """Runs in a DataLoader worker: batches, plus whether the worker reads with zarrs."""
    from torch.utils.data import get_worker_info

    batch = collate_items(items)
    batch["uses_zarrs"] = get_worker_info().dataset.store._handles()._images.uses_zarrs
    return batch


def test_forkserver_workers_read_with_zarrs_after_the_parent_did(zarr_path):
    """hpc.store: zarrs cannot run after fork(), so a forked worker of a parent that read
    images falls back to zarr's ~10x slower pipeline; forkserver workers do not."""
    from torch.utils.data import DataLoader

    from galaxy_hpc.data.loader import worker_context
    from hpc.store.zarr_backend import ZARRS_ENV

    ds = StoreDataset(zarr_path, batch_size=50)
    assert len(list(ds)) == NUM_ITEMS  # the parent reads images with zarrs
    zarrs_on = os.environ.get(ZARRS_ENV, "1") != "0"
    for context, expected in (("forkserver", zarrs_on), ("fork", False)):
        loader = DataLoader(ds, batch_size=50, num_workers=2, collate_fn=collate_reporting_zarrs,
                            multiprocessing_context=worker_context(context))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert {batch["uses_zarrs"] for batch in loader} == {expected}


def test_reads_are_whole_shards_in_one_call(zarr_path, monkeypatch):
    calls = []
    read = Store.read_images

    def recording(self, start=0, stop=None):
        calls.append((start, stop))
        return read(self, start, stop)

    monkeypatch.setattr(Store, "read_images", recording)
    ds = StoreDataset(zarr_path, rank=1, world_size=3, seed=2, batch_size=8)
    assert len(list(ds)) == 100
    bounds = [(a, a + SHARD) for a in range(0, NUM_ITEMS, SHARD)]
    for start, stop in calls:  # each read lies in one shard ...
        assert any(a <= start < stop <= b for a, b in bounds)
    whole = [c for c in calls if c in bounds or c == (288, 300)]
    assert len(calls) - len(whole) <= 2  # ... and all but the span's ends are whole shards


@pytest.mark.parametrize("num_workers", [0, 2])
def test_without_pixels_no_image_is_read_and_the_rest_is_unchanged(zarr_path, monkeypatch,
                                                                   num_workers):
    """Training from cached latents: batches carry the same items, captions and conditions
    in the same order as with pixels, and the store's images are never read (checked in
    this process: with workers, the reads are theirs)."""
    options = dict(rank=1, world_size=2, seed=3, batch_size=8, drop_last=True,
                   augment=GalaxyAugment(), caption_column="caption", caption_dropout=0.2,
                   condition_columns=("redshift", "log_stellar_mass"))
    with_pixels = list(StoreLoader(StoreDataset(zarr_path, **options), num_workers=num_workers))

    def refuse(self, start=0, stop=None):
        raise AssertionError(f"images {start}:{stop} read with pixels=False")

    monkeypatch.setattr(Store, "read_images", refuse)
    ds = StoreDataset(zarr_path, pixels=False, **options)
    without = list(StoreLoader(ds, num_workers=num_workers))
    assert len(without) == len(with_pixels) > 0
    for a, b in zip(with_pixels, without):
        assert "pixel_values" not in b and a["pixel_values"].shape[0] == len(b["index"])
        assert torch.equal(a["index"], b["index"]) and a["caption"] == b["caption"]
        assert torch.equal(a["conditions"], b["conditions"])
    assert [sorted(item) for item in itertools.islice(iter(ds), 2)] == \
        [["caption", "conditions", "index"]] * 2


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("rotation", ["right_angles", "none", None])
@pytest.mark.parametrize("pixel_range", [(-1.0, 1.0), (0.0, 1.0)])
def test_uint8_batches_convert_to_the_float_batches_bit_for_bit(zarr_path, items, num_workers,
                                                                rotation, pixel_range):
    """pixel_dtype uint8 hands out the stored bytes (gathered, flipped or turned by right
    angles: no draws left for later); to_model_pixels makes of them exactly the float32
    path's pixel_values, and everything else in the batch is unchanged."""
    images, _ = items
    augment = None if rotation is None else GalaxyAugment(rotation=rotation)
    options = dict(rank=1, world_size=2, seed=5, batch_size=8, drop_last=True,
                   augment=augment, caption_column="caption", pixel_range=pixel_range)
    floats = list(StoreLoader(StoreDataset(zarr_path, **options), num_workers=num_workers))
    raw = list(StoreLoader(StoreDataset(zarr_path, pixel_dtype="uint8", **options),
                           num_workers=num_workers))
    assert len(raw) == len(floats) > 0
    moved = 0
    for a, b in zip(floats, raw):
        assert b["pixel_values"].dtype == torch.uint8 and "augment_params" not in b
        assert torch.equal(a["index"], b["index"]) and a["caption"] == b["caption"]
        converted = to_model_pixels(b["pixel_values"], pixel_range, device="cpu")
        assert converted.dtype == torch.float32
        assert torch.equal(converted, a["pixel_values"])  # bit for bit
        stored = torch.from_numpy(images[b["index"].numpy()])
        moved += int((b["pixel_values"] != stored).flatten(1).any(1).sum())
        # the same multiset of values per image: a permutation of the stored pixels
        assert torch.equal(b["pixel_values"].flatten(1).sort(1).values,
                           stored.flatten(1).sort(1).values)
    batches = sum(len(b["index"]) for b in raw)
    assert (moved > batches // 2) == (rotation is not None)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_uint8_batches_leave_any_angle_rotation_to_the_device(zarr_path, items, num_workers):
    """With rotation by any angle the workers only gather: the batch carries the stored
    bytes and each item's draws, and to_model_pixels, given the dataset's augmentation,
    rotates exactly as the float path did in the workers."""
    images, _ = items
    options = dict(seed=2, batch_size=16, drop_last=True, augment=GalaxyAugment(),
                   pixel_range=(0.0, 1.0))
    floats = list(StoreLoader(StoreDataset(zarr_path, **options), num_workers=num_workers))
    raw_set = StoreDataset(zarr_path, pixel_dtype="uint8", **options)
    raw = list(StoreLoader(raw_set, num_workers=num_workers))
    assert len(raw) == len(floats) > 0
    angles = []
    for a, b in zip(floats, raw):
        assert torch.equal(b["pixel_values"], torch.from_numpy(images[b["index"].numpy()]))
        params = b["augment_params"]
        assert params.shape == (16, 3) and params.dtype == torch.float64
        angles += params[:, 0].tolist()
        done = to_model_pixels(b["pixel_values"], (0.0, 1.0), device="cpu",
                               augment=raw_set.augment, augment_params=params)
        assert torch.equal(done, a["pixel_values"])  # bit for bit
    assert len(set(angles)) == len(angles) and 0.0 < min(angles) and max(angles) < 360.0
    with pytest.raises(ValueError, match="both the dataset's augment"):
        to_model_pixels(raw[0]["pixel_values"], augment=raw_set.augment)
    with pytest.raises(ValueError, match="item by item"):
        next(iter(raw_set))


def test_uint8_batches_are_refused_where_they_would_change_the_pixels(zarr_path, tmp_path):
    flux, columns = draw_galaxies(SynthConfig(size=16), seed=1, start=0, count=8)
    path = write_store(tmp_path / "flux.zarr", flux, {"redshift": columns["redshift"]},
                       shard_size=8)
    with pytest.raises(ValueError, match="flux.zarr is read through AsinhStretch"):
        StoreDataset(path, pixel_dtype="uint8")
    with pytest.raises(ValueError, match="pixel_dtype must be one of float32, uint8"):
        StoreDataset(zarr_path, pixel_dtype="float16")
    assert StoreDataset.uint8_possible(StoreDataset(zarr_path).store)
    assert not StoreDataset.uint8_possible(StoreDataset(path).store)
    with pytest.raises(ValueError, match="takes uint8"):
        to_model_pixels(torch.zeros(1, 3, 4, 4))


# -- order: a function of (seed, epoch), and exact resume ---------------------------------


def test_order_depends_on_seed_and_epoch_only(zarr_path):
    def order(seed, epoch, **kw):
        ds = StoreDataset(zarr_path, seed=seed, batch_size=16, **kw)
        ds.set_epoch(epoch)
        return [item["index"] for item in ds]

    first = order(0, 0)
    assert first == order(0, 0)
    assert first != order(0, 1) and sorted(order(0, 1)) == sorted(first)
    assert first != order(1, 0)
    assert order(0, 0, shuffle=False) == list(range(NUM_ITEMS))
    # shuffled within windows of shards: a batch mixes several shards
    assert len({i // SHARD for i in first[:16]}) > 1
    one_shard = order(0, 0, shuffle_shards=1)
    assert len({i // SHARD for i in one_shard[:16]}) == 1


@pytest.mark.parametrize("num_workers", [0, 2])
def test_exact_mid_epoch_resume(zarr_path, num_workers):
    def build():
        ds = StoreDataset(zarr_path, rank=1, world_size=2, seed=11, batch_size=8,
                          drop_last=True, augment=GalaxyAugment(), caption_column="caption",
                          caption_dropout=0.2)
        return StoreLoader(ds, num_workers=num_workers)

    reference = build()
    reference.set_epoch(3)
    full = list(reference)
    assert len(full) == len(reference) == 18

    # after 7 batches the next comes from worker 1; after 17, worker 0 is exhausted
    for stop in (7, 17):
        first = build()
        first.set_epoch(3)
        head = []
        for batch in first:
            head.append(batch)
            if len(head) == stop:
                state = first.state_dict()
                break
        assert state["epoch"] == 3 and state["samples_seen"] == 8 * stop

        resumed = build()
        resumed.load_state_dict(state)
        resumed.set_epoch(3)  # the training loop sets the epoch again: the position is kept
        tail = list(resumed)
        assert len(tail) == len(full) - stop
        for got, want in zip(head + tail, full, strict=True):
            assert torch.equal(got["index"], want["index"])
            assert torch.equal(got["pixel_values"], want["pixel_values"])
            assert got["caption"] == want["caption"]
    assert resumed.state_dict()["samples_seen"] == 144
    resumed.set_epoch(4)  # the next epoch starts from its beginning
    reference.set_epoch(4)
    assert indices(resumed) == indices(reference)


def test_rank_zeros_state_resumes_every_rank(zarr_path):
    """Ranks step together: the checkpoint's (rank 0's) state resumes each rank exactly."""
    def build(rank):
        return StoreLoader(StoreDataset(zarr_path, rank=rank, world_size=3, seed=6,
                                        batch_size=8, drop_last=True))

    rank0 = build(0)
    for count, _ in enumerate(rank0, start=1):
        if count == 5:
            break
    state = rank0.state_dict()
    for rank in (1, 2):
        full = indices(build(rank))
        resumed = build(rank)
        resumed.load_state_dict(state)
        assert indices(resumed) == full[40:]


def test_resume_refuses_a_changed_layout(zarr_path):
    ds = StoreDataset(zarr_path, batch_size=8)
    state = StoreLoader(ds).state_dict()
    with pytest.raises(ValueError, match="num_workers: saved 0, now 2"):
        StoreLoader(ds, num_workers=2).load_state_dict(state)
    other = StoreDataset(zarr_path, batch_size=8, world_size=2)
    with pytest.raises(ValueError, match="world_size"):
        StoreLoader(other).load_state_dict(state)
    ds.skip(8, num_workers=2)
    with pytest.raises(ValueError, match="num_workers=2"):
        next(iter(ds))


def test_batch_schedule_matches_the_dataloader():
    assert shards.batch_schedule([20, 30], 8) == [
        (0, 8), (1, 8), (0, 8), (1, 8), (0, 4), (1, 8), (1, 6)]
    assert shards.resume_position([20, 30], 8, 32) == ([16, 16], 0)
    assert shards.resume_position([20, 30], 8, 36) == ([20, 16], 1)
    assert shards.resume_position([20, 30], 8, 50) == ([20, 30], 0)
    with pytest.raises(ValueError, match="inside a batch"):
        shards.resume_position([20, 30], 8, 30)
    assert shards.worker_counts(100, 3, 16) == [32, 32, 36]
    assert shards.worker_counts(100, 0, 16) == [100]


# -- what an item holds ---------------------------------------------------------------


def test_caption_tag_shuffling_is_reproducible(zarr_path, items):
    _, columns = items

    def captions(epoch):
        ds = StoreDataset(zarr_path, seed=4, caption_column="caption")
        ds.set_epoch(epoch)
        return {item["index"]: item["caption"] for item in ds}

    epoch0 = captions(0)
    assert epoch0 == captions(0)
    for index, caption in epoch0.items():
        tags = caption_tags(caption)
        assert tags[0] == "sdss"  # the survey prefix stays first
        assert sorted(tags) == sorted(caption_tags(columns["caption"][index]))
    shuffled = sum(c != columns["caption"][i] for i, c in epoch0.items())
    assert shuffled > NUM_ITEMS / 2  # 3 tags: 5 of 6 orders differ from the original
    assert sum(epoch0[i] != c for i, c in captions(1).items()) > NUM_ITEMS / 2
    plain = StoreDataset(zarr_path, caption_column="caption", shuffle_caption_tags=False)
    assert all(item["caption"] == columns["caption"][item["index"]] for item in plain)


def test_caption_dropout_rate(zarr_path):
    ds = StoreDataset(zarr_path, seed=9, caption_column="caption", caption_dropout=0.3)
    dropped = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        dropped += [item["caption"] == "" for item in ds]
    assert abs(np.mean(dropped) - 0.3) < 0.05  # 900 draws: 3 sigma = 0.046


def test_item_draws_depend_on_seed_epoch_and_index_only():
    key = shards.item_key(3, 1)
    indices = np.arange(1000)
    u = shards.item_uniforms(key, indices, 0, 6)
    assert u.shape == (1000, 6) and u.dtype == np.float64 and 0 <= u.min() and u.max() < 1
    # the same draws whatever else is drawn, in whatever order and company
    picked = np.array([999, 5, 17, 5])
    np.testing.assert_array_equal(shards.item_uniforms(key, picked, 2, 3), u[picked, 2:5])
    assert shards.item_key(3, 1) == key
    for other in (shards.item_key(3, 2), shards.item_key(4, 1)):
        assert not np.isclose(shards.item_uniforms(other, indices, 0, 6), u).any(axis=1).all()
    # uniform and uncorrelated, across draws and across neighbouring items
    assert np.abs(u.mean(axis=0) - 0.5).max() < 4 * np.sqrt(1 / 12 / 1000)
    corr = np.corrcoef(np.concatenate([u[:-1], u[1:]], axis=1).T) - np.eye(12)
    assert np.abs(corr).max() < 0.15


def test_batches_hold_the_items_in_the_same_order(zarr_path):
    def build(**kw):
        return StoreDataset(zarr_path, seed=8, rank=1, world_size=2, batch_size=16,
                            augment=GalaxyAugment(), caption_column="caption",
                            caption_dropout=0.2, condition_columns=["redshift"], **kw)

    items = list(build(chunk_size=7))
    batches = list(StoreBatches(build()))
    assert [len(b["index"]) for b in batches] == [16] * 9 + [6]
    assert {b["index"].dtype for b in batches} == {torch.int64}
    flat = [(b["index"][k].item(), b["pixel_values"][k], b["caption"][k], b["conditions"][k])
            for b in batches for k in range(len(b["index"]))]
    assert len(flat) == len(items) == 150
    for (index, pixels, caption, conditions), item in zip(flat, items, strict=True):
        assert index == item["index"] and caption == item["caption"]
        assert torch.equal(pixels, item["pixel_values"])
        assert torch.equal(conditions, item["conditions"])


def test_loader_batches_are_the_batches_a_dataloader_makes_from_items(zarr_path):
    """StoreLoader reads whole batches from its workers; a plain DataLoader batching the
    items of the same workers gives the same batches, in the same order."""
    from torch.utils.data import DataLoader

    from galaxy_hpc.data.loader import worker_context

    ds = StoreDataset(zarr_path, seed=4, world_size=2, rank=0, batch_size=16,
                      caption_column="caption", condition_columns=["n_arms"])
    ds.set_epoch(1)
    made = DataLoader(ds, batch_size=16, num_workers=2, collate_fn=collate_items,
                      multiprocessing_context=worker_context("forkserver"))
    read = StoreLoader(ds, num_workers=2)
    count = 0
    for got, want in zip(read, made, strict=True):
        assert got.keys() == want.keys()
        for name in ("pixel_values", "index", "conditions"):
            assert got[name].dtype == want[name].dtype and torch.equal(got[name], want[name])
        assert got["caption"] == want["caption"]
        count += 1
    assert count == len(read) == 10


def test_captions_and_dropout_do_not_depend_on_the_layout(zarr_path):
    def captions(world_size, num_workers, **kw):
        got = {}
        for rank in range(world_size):
            ds = StoreDataset(zarr_path, rank=rank, world_size=world_size, seed=12,
                              caption_column="caption", caption_dropout=0.25, **kw)
            ds.set_epoch(2)
            for batch in StoreLoader(ds, num_workers=num_workers):
                got.update(zip(batch["index"].tolist(), batch["caption"]))
        return got

    one = captions(1, 0, batch_size=64)
    assert len(one) == NUM_ITEMS and 0.15 < sum(c == "" for c in one.values()) / NUM_ITEMS < 0.35
    assert captions(3, 2, batch_size=5, shuffle_shards=1) == one


def test_conditions_hold_the_asked_columns_in_order(zarr_path, items):
    _, columns = items
    names = ["log_stellar_mass", "n_arms", "spiral", "redshift"]
    ds = StoreDataset(zarr_path, seed=2, batch_size=32, condition_columns=names)
    batch = next(iter(StoreLoader(ds)))
    assert batch["conditions"].dtype == torch.float32 and batch["conditions"].shape == (32, 4)
    idx = batch["index"].numpy()
    expected = np.stack([np.asarray(columns[n], dtype=np.float32)[idx] for n in names], axis=1)
    np.testing.assert_array_equal(batch["conditions"].numpy(), expected)
    assert "caption" not in batch


def test_gz2_fractions_and_float32_flux_through_the_stretch(tmp_path):
    from galaxy_hpc.data.synth import VOTE_COLUMNS

    images, columns = draw_galaxies(SynthConfig(size=32), seed=1, start=0, count=48)
    columns = {k: v for k, v in columns.items() if k != "id"}
    path = write_store(tmp_path / "flux.h5", images, columns, shard_size=16, backend="hdf5")
    ds = StoreDataset(path, seed=0, batch_size=12, condition_columns=list(VOTE_COLUMNS))
    assert isinstance(ds.stretch, AsinhStretch)
    loader = StoreLoader(ds)
    for batch in loader:
        idx = batch["index"].numpy()
        x = batch["pixel_values"]
        torch.testing.assert_close(x, ds.stretch.forward(torch.from_numpy(images[idx])))
        assert -1.5 < float(x.min()) and float(x.max()) < 1.5
        back = ds.stretch.inverse(x).numpy()
        np.testing.assert_allclose(back, images[idx], rtol=1e-4, atol=1e-4)
        assert batch["conditions"].shape == (len(idx), 37)
        np.testing.assert_allclose(batch["conditions"][:, 0],
                                   columns[VOTE_COLUMNS[0]][idx], rtol=1e-6)
    given = StoreDataset(path, stretch=ds.stretch.to_dict())
    assert given.stretch == ds.stretch


def test_augmentation_is_per_item_and_off_by_default(zarr_path, items):
    images, _ = items
    plain = {it["index"]: it["pixel_values"] for it in StoreDataset(zarr_path, seed=3)}
    for index, pixels in plain.items():
        assert torch.equal(pixels, torch.from_numpy(images[index]).float() / 127.5 - 1)

    def augmented(**kw):
        ds = StoreDataset(zarr_path, seed=3, augment=GalaxyAugment(), **kw)
        return {it["index"]: it["pixel_values"] for it in ds}

    one, other = augmented(), augmented(world_size=3, rank=2, shuffle_shards=1)
    assert all(torch.equal(one[i], other[i]) for i in other)  # same item, same augmentation
    changed = sum(not torch.equal(one[i], plain[i]) for i in one)
    assert changed > 0.9 * NUM_ITEMS


def test_collate_and_lengths(zarr_path):
    ds = StoreDataset(zarr_path, batch_size=64, caption_column="caption",
                      condition_columns=["redshift"])
    loader = StoreLoader(ds)
    assert len(ds) == NUM_ITEMS and len(loader) == 5
    batches = list(loader)
    assert [len(b["index"]) for b in batches] == [64, 64, 64, 64, 44]
    batch = batches[0]
    assert batch["pixel_values"].shape == (64, 3, 32, 32)
    assert batch["index"].dtype == torch.int64
    assert isinstance(batch["caption"], list) and len(batch["caption"]) == 64
    assert batch["conditions"].shape == (64, 1)
    single = collate_items([{"pixel_values": torch.zeros(1, 2, 2), "index": 7}])
    assert single["index"].tolist() == [7] and set(single) == {"pixel_values", "index"}
    assert Counter(type(v).__name__ for v in batch.values())["Tensor"] == 3


def test_user_mistakes_say_what_to_change(zarr_path):
    with pytest.raises(ValueError, match="rank must be < world_size"):
        StoreDataset(zarr_path, rank=2, world_size=2)
    with pytest.raises(ValueError, match="caption_column 'redshift' must be a str column"):
        StoreDataset(zarr_path, caption_column="redshift")
    with pytest.raises(ValueError, match="condition column 'caption' must be a numeric"):
        StoreDataset(zarr_path, condition_columns=["caption"])
    with pytest.raises(ValueError, match="condition column 'mass' must be"):
        StoreDataset(zarr_path, condition_columns=["mass"])
    with pytest.raises(ValueError, match="too few"):
        StoreDataset(zarr_path, world_size=4, batch_size=128, drop_last=True)
    with pytest.raises(ValueError, match="caption_dropout"):
        StoreDataset(zarr_path, caption_dropout=1.5)
    with pytest.raises(ValueError, match="pixel_range"):
        StoreDataset(zarr_path, pixel_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="samples_seen"):
        StoreDataset(zarr_path).skip(NUM_ITEMS + 1, num_workers=0)
    with pytest.raises(ValueError, match="multiprocessing_context"):
        StoreLoader(StoreDataset(zarr_path), num_workers=1, multiprocessing_context="thread")


# -- a killed loader takes its workers with it -------------------------------------------

_OWNER = """
import sys, time
from galaxy_hpc.data.dataset import StoreDataset
from galaxy_hpc.data.loader import StoreLoader
batches = iter(StoreLoader(StoreDataset(sys.argv[1], batch_size=10), num_workers=2))
next(batches)
print("reading", flush=True)
time.sleep(600)
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_end_when_the_loader_process_is_killed(zarr_path):
    """SIGKILL gives the loader's process no chance to stop its workers, and the
    DataLoader's watchdog watches a worker's parent, which under forkserver is the server
    (kept alive by those same workers): before the owner watch, both stayed forever."""
    import signal
    import subprocess
    import sys
    import time

    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(zarr_path)],
                             stdout=subprocess.PIPE, text=True)
    left: list[int] = []
    try:
        assert owner.stdout.readline().strip() == "reading"
        servers = _children(owner.pid)
        workers = [w for s in servers for w in _children(s)]
        left = servers + workers
        assert len(workers) == 2, (servers, workers)
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in left) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in left if _alive(p)], "workers or their server outlived the loader"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        for pid in left:  # only what this test started, by pid
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
