"""StoreDataset: the torch dataset every trainer reads (diffusion, GAN, DINOv2 regressor).

Why an IterableDataset. A store is fast only when read in shard-sized slices (one
`read_images(start, stop)` per shard: ~25,000 img/s against ~1,000 img/s one image at a
time, hpc/store/README.md). A map-style dataset is asked for one index at a time, in
the sampler's random order, and so reads one image at a time. An iterable dataset
decides its own reading order: every worker reads its own whole shards in slices, and
shuffles within a window of a few shards (see shards.py for how ranks and workers
split an epoch, and why).

Determinism. The order of samples a rank sees depends only on (seed, epoch, rank,
world_size, num_workers, batch_size, shuffle_shards): the shard permutation and the
shuffle windows come from them, never from process ids or timing (batch_size enters
because a DataLoader takes whole batches from its workers in turn). Per-item randomness
(augmentation, caption tag order, caption dropout) comes from counter-based draws, each
a hash of (seed, epoch, index, draw number) (`shards.item_uniforms`), so an item's
augmentation in an epoch is the same whatever the layout, and a whole batch's draws are
a few numpy operations. Exact mid-epoch resume: `skip(samples_seen, num_workers)`
(StoreLoader does it from its state_dict) starts the next pass where an uninterrupted
run would have been.

Processes. Only the manifest and, for float32 stores, a small sample for the stretch
are read in the constructor; images and columns are opened lazily in each process that
iterates (each DataLoader worker), so the dataset pickles small and no file handle or
zarrs thread pool crosses a fork. Use StoreLoader (forkserver workers by default).

Batches. The work is done a whole batch at a time: `batches()` (what StoreLoader reads,
through `StoreBatches` and a DataLoader with batch_size=None) yields the dicts a training
step takes, made straight from the shard reads: each image is stretched from its shard
read into the batch's float32 array, gathering and converting in one pass (in a
DataLoader worker that array is in shared memory, so the batch crosses to the main
process without a copy); no per-item dicts, no re-stacking, one set of vectorised draws
per batch. Iterating the dataset itself yields single items, cut from runs of
`chunk_size`, in the same order.

Items: `pixel_values` float32 (C, H, W), in `pixel_range` ([-1, 1] by default) through
the stretch (stretch.py), augmented before a nonlinear stretch (bilinear interpolation
keeps flux in linear flux, not in asinh space; the uint8 stretch is linear, so there the
stretch comes first and the rotation works on the stretched floats); `index` (int, the
item's index in the store); `caption` (str) when `caption_column` is set; `conditions`
float32 (len(condition_columns),) when condition columns are asked for, in the order
asked. `collate_items` batches them; a batch of `batches()` holds the same, stacked:
`pixel_values` (B, C, H, W), `index` int64 (B,), `caption` list[str], `conditions` (B, K).

Measured (2026-11, 2-core AMD EPYC VM shared with other jobs, load average 3.2-4.0;
`tests/data/measure_dataset_rate.py`, 2 torch threads in the main process): 5,000
synthetic galaxies 3x128x128 uint8, zarr zstd-1, batch 64, whole epochs through
StoreLoader, best of 2 (steady state excludes the time to the first batch); in brackets
the item-by-item version this replaced, run just before (load average 2.2-3.0):

| num_workers | augment | items/s per epoch | steady |
|---|---|---|---|
| 0 | off | 6,235 (4,649) | 7,014 (5,057) |
| 0 | on  | 1,285 (628) | 1,324 (635) |
| 2 | off | 3,402 (2,312) | 4,079 (2,789) |
| 2 | on  | 1,053 (697) | 1,161 (766) |

Where one core's time goes without augmentation (128 px, captions shuffled, steady
state): ~95 us per image reading (zstd decoding alone is ~80 us), ~55 us stretching into
float32 (the exact x / 127.5 - 1 costs a division per pixel), ~15 us the rest. Rotation
costs ~0.5 ms per 3x128x128 image on one core (grid_sample); workers scale it with
cores, which a 2-core machine shared with the main process does not have. Without
augmentation two workers are slower than none here: each batch crosses processes
(12.6 MB of float32) and the main process has no core of its own. In the main process
the per-batch work uses numpy, not torch's intra-op threads: with 2 torch threads on 2
busy cores the same epoch ran at ~200 items/s, with numpy at ~4,400.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from galaxy_hpc.data import nonfinite, shards
from galaxy_hpc.data.augment import NUM_DRAWS as _AUGMENT_DRAWS
from galaxy_hpc.data.augment import AugmentParams, GalaxyAugment
from galaxy_hpc.data.captions import shuffle_tags_by_keys
from galaxy_hpc.data.split import ItemSubset
from galaxy_hpc.data.stretch import Stretch, Uint8Stretch, stretch_for_store
from hpc.store import Store, open_store

NUMERIC = ("float64", "float32", "int64", "bool")
PIXEL_DTYPES = ("float32", "uint8")
# An item's draws (shards.item_uniforms): 0-2 augmentation, 3 caption dropout, 4 on the
# keys that order its caption's tags. Fixed slots: no draw depends on which others are used.
_DROPOUT_DRAW = _AUGMENT_DRAWS
_TAG_DRAWS = _AUGMENT_DRAWS + 1


class StoreDataset(IterableDataset):
    """Items of a finalized hpc.store store, for one rank of a training job.

    rank, world_size: this process's place in the job (plain ints from the training loop).
    drop_last: False -> one epoch over all ranks is every item exactly once (ranks differ
        by at most one item); True -> every rank gets the same number of items, a multiple
        of batch_size (what DDP/ZeRO training needs), dropping < world_size x batch_size
        items, different ones each epoch.
    batch_size: of the DataLoader reading this (StoreLoader uses it); workers' spans are
        whole batches so that only the epoch's last batch can be short; `batches()` yields
        batches of this size.
    shuffle_shards: shards read and shuffled together (memory: that many shards per worker).
    augment: a GalaxyAugment for training; None (no augmentation) for evaluation.
    stretch: None -> x/127.5 - 1 for uint8 stores, an asinh stretch estimated from the
        store for float32 ones; or a Stretch / its to_dict() (from config or a model).
    chunk_size: items made together when the dataset is iterated item by item.
    items: None -> every item of the store; or the ascending store indices to read (the
        training items of a held-out split): epochs, ranks and resume work on them alone,
        and batches still carry store indices.
    decode_device: where a jpeg-source store's JPEG files are decoded ("cuda" on GPU nodes:
        nvJPEG, one call per shard slice; pixels come back to the CPU for the stretch).
        Other stores ignore it.
    pixels: False -> batches carry no pixel_values and no image is read or decoded: the
        order, captions and conditions stay exactly those of pixels=True. For training from
        cached latents (data.latents), where images would be read only to be thrown away.
    pixel_dtype: "float32" -> pixel_values as described below; "uint8" -> the stored uint8
        values, only gathered (and flipped or turned by right angles: exact permutations),
        for `to_model_pixels` to finish where the batch is used: on a GPU rank the
        conversion is free there, and a quarter of the bytes crosses from the workers and
        to the device. Augmentation that resamples (rotation "any") is then left to
        `to_model_pixels` too: the batch carries each item's draws as `augment_params`
        (B, 3) float64 (angle in degrees, left-right flip, up-down flip), and the workers
        never interpolate. Needs a uint8 store read through the linear uint8 stretch.
    """

    def __init__(self, store: str | os.PathLike | Store, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0, shuffle: bool = True, drop_last: bool = False,
                 batch_size: int = 1, shuffle_shards: int = 4,
                 augment: GalaxyAugment | None = None, caption_column: str | None = None,
                 shuffle_caption_tags: bool = True, caption_keep_first: int = 1,
                 caption_dropout: float = 0.0, condition_columns: Sequence[str] = (),
                 pixel_range: tuple[float, float] = (-1.0, 1.0),
                 stretch: Stretch | Mapping[str, Any] | None = None,
                 chunk_size: int = 64, items: np.ndarray | None = None,
                 pixels: bool = True, decode_device: str = "cpu",
                 pixel_dtype: str = "float32") -> None:
        super().__init__()
        self.store = store if isinstance(store, Store) else open_store(store)
        # What is read: the whole store, or only some of its items (the training items of
        # a held-out split), laid out as a store of their own (split.ItemSubset).
        self.layout: Store | ItemSubset = (self.store if items is None
                                           else ItemSubset(self.store, items))
        self.pixels = bool(pixels)
        self.decode_device = str(decode_device)
        for name, value, least in (("world_size", world_size, 1), ("rank", rank, 0),
                                   ("batch_size", batch_size, 1), ("seed", seed, 0),
                                   ("shuffle_shards", shuffle_shards, 1),
                                   ("chunk_size", chunk_size, 1),
                                   ("caption_keep_first", caption_keep_first, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if rank >= world_size:
            raise ValueError(f"rank must be < world_size ({world_size}), got {rank}")
        if not 0.0 <= caption_dropout <= 1.0:
            raise ValueError(f"caption_dropout must be a probability in [0, 1], "
                             f"got {caption_dropout}")
        lo, hi = (float(v) for v in pixel_range)
        if not lo < hi:
            raise ValueError(f"pixel_range must be (low, high) with low < high, got {pixel_range}")
        self._check_columns(caption_column, condition_columns)
        if drop_last and shards.rank_count(len(self.layout), 0, world_size, True, batch_size) == 0:
            raise ValueError(
                f"{self.store.path} has {len(self.layout)} items to read: too few for "
                f"{world_size} rank(s) to get a full batch of {batch_size} each with "
                "drop_last; lower batch_size or set drop_last=False")
        self.rank, self.world_size, self.seed = int(rank), int(world_size), int(seed)
        self.shuffle, self.drop_last, self.batch_size = shuffle, drop_last, int(batch_size)
        self.shuffle_shards, self.chunk_size = int(shuffle_shards), int(chunk_size)
        self.augment, self.caption_column = augment, caption_column
        self.shuffle_caption_tags = shuffle_caption_tags
        self.caption_keep_first = caption_keep_first
        self.caption_dropout = float(caption_dropout)
        self.condition_columns = tuple(condition_columns)
        self.pixel_range = (lo, hi)
        nonfinite.check_column(self.store, use="training")  # ingest counted them: refuse now
        self.stretch = stretch_for_store(self.store, stretch)
        self.pixel_dtype = self._check_pixel_dtype(pixel_dtype)
        # uint8 batches with resampling augmentation: the draws travel, the rotation waits.
        self._deferred_augment = (self.pixel_dtype == "uint8" and augment is not None
                                  and not augment.exact)
        self.epoch = 0
        self._skip: tuple[int, int, int] | None = None  # (epoch, samples_seen, num_workers)
        self._columns: dict[str, np.ndarray] | None = None  # loaded lazily per process

    def _check_pixel_dtype(self, pixel_dtype: str) -> str:
        if pixel_dtype not in PIXEL_DTYPES:
            raise ValueError(f"pixel_dtype must be one of {', '.join(PIXEL_DTYPES)}, "
                             f"got {pixel_dtype!r}")
        if pixel_dtype == "uint8":
            if not isinstance(self.stretch, Uint8Stretch):
                raise ValueError(f"pixel_dtype uint8 needs a uint8 store read through the "
                                 f"linear uint8 stretch; {self.store.path} is read through "
                                 f"{type(self.stretch).__name__}")
        return pixel_dtype

    @staticmethod
    def uint8_possible(store: Store, stretch: Stretch | Mapping[str, Any] | None = None) -> bool:
        """Whether pixel_dtype="uint8" is open to a dataset of this store. Without a given
        stretch, from the store's dtype alone: nothing is read (a float store's stretch
        would be estimated from a sample)."""
        if stretch is None:
            return store.spec.image_dtype == "uint8"
        return isinstance(stretch_for_store(store, stretch), Uint8Stretch)

    def _check_columns(self, caption: str | None, conditions: Sequence[str]) -> None:
        spec, where = self.store.spec.columns, self.store.path
        known = ", ".join(f"{k} ({v})" for k, v in spec.items()) or "(none)"
        if isinstance(conditions, str):
            raise TypeError(f"condition_columns must be a list of names, got {conditions!r}")
        if caption is not None and spec.get(caption) != "str":
            raise ValueError(f"caption_column {caption!r} must be a str column of {where}; "
                             f"columns: {known}")
        for name in conditions:
            if spec.get(name) not in NUMERIC:
                raise ValueError(f"condition column {name!r} must be a numeric column of "
                                 f"{where}; columns: {known}")
        if len(set(conditions)) != len(conditions):
            raise ValueError(f"condition_columns repeat a name: {list(conditions)}")

    # -- pickling: no cached columns or handles travel to workers ------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_columns": None}

    # -- epochs and resume ----------------------------------------------------------------
    def __len__(self) -> int:
        """Items this rank reads per epoch."""
        return shards.rank_count(len(self.layout), self.rank, self.world_size, self.drop_last,
                                 self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (shard permutation, shuffles, augmentation). A pending skip
        applies only to the epoch it was given for."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def skip(self, samples_seen: int, num_workers: int) -> None:
        """Start the next pass over the current epoch after the first `samples_seen`
        samples (whole batches) that a DataLoader with `num_workers` workers and batch_size
        would yield (the order depends on num_workers; the DataLoader must use the same)."""
        counts = shards.worker_counts(len(self), num_workers, self.batch_size)
        shards.resume_position(counts, self.batch_size, samples_seen)  # checks the count
        self._skip = (self.epoch, int(samples_seen), int(num_workers))

    def _role(self, worker: int, num_workers: int) -> tuple[int, int]:
        """(the worker whose span this worker reads, how far into it to start)."""
        if self._skip is None or self._skip[0] != self.epoch or not self._skip[1]:
            return worker, 0
        _, seen, expected = self._skip
        if expected != num_workers:
            raise ValueError(f"resume position was taken with num_workers={expected}; this "
                             f"DataLoader has {num_workers}: the sample order would differ")
        counts = shards.worker_counts(len(self), num_workers, self.batch_size)
        offsets, first = shards.resume_position(counts, self.batch_size, seen)
        role = (first + worker) % len(counts)
        return role, offsets[role]

    # -- reading ------------------------------------------------------------------------
    def __iter__(self):
        """Single items (dicts), in the order of `batches()`."""
        if self._deferred_augment:
            raise ValueError("item by item, a StoreDataset hands out finished pixels: "
                             "pixel_dtype uint8 with rotation 'any' is for batches() "
                             "(StoreLoader) and to_model_pixels")
        for batch in self._batches(self.chunk_size, shared=False):
            yield from _items_of(batch)

    def batches(self):
        """This process's whole batches of batch_size (only the epoch's last can be short),
        in the order a DataLoader with batch_size would have made them from the items: in
        a DataLoader worker, that worker's share (see shards.py)."""
        return self._batches(self.batch_size, shared=get_worker_info() is not None)

    def _batches(self, size: int, shared: bool):
        key = shards.item_key(self.seed, self.epoch)
        for images, indices in self._reads(size):
            yield self._batch(images, indices, key, shared)

    def _reads(self, size: int):
        """(images, store indices) of consecutive runs of `size` items of this worker's
        stream (the last run may be short): shard-sized reads, shuffled within windows; a
        run may span two windows. The images are a list of per-item views into the shard
        reads: gathering them is left to the one pass that converts them to floats."""
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info else (0, 0)
        store = self.layout
        sizes = np.array([b - a for a, b in map(store.shard_bounds, range(store.num_shards))])
        starts = np.array([store.shard_bounds(j)[0] for j in range(store.num_shards)])
        order = shards.shard_order(store.num_shards, self.seed, self.epoch, self.shuffle)
        lo, _ = shards.rank_span(len(store), self.rank, self.world_size, self.drop_last,
                                 self.batch_size)
        role, offset = self._role(worker, num_workers)
        w_lo, w_hi = shards.worker_span(len(self), role, num_workers, self.batch_size)
        position = lo + w_lo
        images: list[np.ndarray] = []  # read, not yet yielded
        indices = np.empty(0, dtype=np.int64)
        for window in shards.windows(shards.pieces(order, starts, sizes, lo + w_lo, lo + w_hi),
                                     self.shuffle_shards):
            count = sum(b - a for a, b in window)
            if offset >= count:  # resume: whole windows already seen are not read at all
                offset -= count
                position += count
                continue
            # Kept per shard, not concatenated: a window is ~50 MB at 128 px, and a fresh
            # allocation that large costs page faults (~30 us per image here).
            reads = ([self._read(store, a, b) for a, b in window] if self.pixels
                     else [[None] * (b - a) for a, b in window])
            take = np.arange(count)
            if self.shuffle:
                take = np.random.default_rng(
                    [self.seed, self.epoch, position, shards.STREAM_WINDOW]).permutation(count)
            take, offset = take[offset:], 0
            position += count
            piece = np.searchsorted(np.cumsum([b - a for a, b in window]), take, side="right")
            taken = np.concatenate([np.arange(a, b) for a, b in window])[take]
            rows = taken - np.array([a for a, _ in window])[piece]
            images += [reads[j][row] for j, row in zip(piece.tolist(), rows.tolist())]
            if store is not self.store:
                taken = store.store_index(taken)
            indices = np.concatenate([indices, taken])
            while len(images) >= size:
                yield images[:size], indices[:size].copy()
                images, indices = images[size:], indices[size:]
        if images:
            yield images, indices.copy()

    def _read(self, store: Store | ItemSubset, start: int, stop: int) -> np.ndarray:
        """A shard slice; a jpeg-source store decodes it in one decode_jpeg call, on the
        GPU when the training device is one (nvJPEG)."""
        if self.store.spec.keeps_jpeg:
            return store.read_images(start, stop, device=self.decode_device)
        return store.read_images(start, stop)

    def _load_columns(self) -> dict[str, np.ndarray]:
        if self._columns is None:
            columns = {}
            if self.caption_column is not None:
                columns["caption"] = self.store.read_column(self.caption_column)
            if self.condition_columns:
                columns["conditions"] = np.stack(
                    [self.store.read_column(name).astype(np.float32)
                     for name in self.condition_columns], axis=1)
            self._columns = columns
        return self._columns

    def _batch(self, images: list[np.ndarray], indices: np.ndarray, key: np.uint64,
               shared: bool) -> dict[str, Any]:
        columns = self._load_columns()
        batch: dict[str, Any] = {"index": torch.from_numpy(indices)}
        if self.pixels:
            nonfinite.check_read(self.store, images, indices, use="training")  # float stores
            batch["pixel_values"] = self._pixels(images, indices, key, shared)
            if self._deferred_augment:
                batch["augment_params"] = torch.tensor(
                    [[p.angle_deg, p.hflip, p.vflip] for p in self._draws(key, indices)],
                    dtype=torch.float64)
        if self.caption_column is not None:
            batch["caption"] = self._captions(columns["caption"][indices].tolist(), indices, key)
        if "conditions" in columns:
            batch["conditions"] = torch.from_numpy(columns["conditions"][indices])
        return batch

    def _draws(self, key: np.uint64, indices: np.ndarray) -> list[AugmentParams]:
        """The items' augmentation (slots 0-2 of their counter-based draws)."""
        return self.augment.params(shards.item_uniforms(key, indices, 0, _AUGMENT_DRAWS))

    def _pixels(self, images: list[np.ndarray], indices: np.ndarray, key: np.uint64,
                shared: bool) -> torch.Tensor:
        # numpy's single-threaded ufuncs, not torch's intra-op threads: in a busy main
        # process (num_workers=0) these large parallel ops collapse when the cores are
        # oversubscribed (measured 3,500 -> 200 items/s with 2 threads on 2 busy cores).
        augment = self.augment
        if self.pixel_dtype == "uint8":  # gathered only: to_model_pixels converts on the device
            exact = augment is not None and augment.exact
            pixels = _empty((len(images), *images[0].shape), np.dtype(np.uint8),
                            shared and not exact)
            np.stack(images, out=pixels.numpy())
            if exact:  # permutations keep uint8; a resampling one waits for to_model_pixels
                pixels = augment.apply(pixels, self._draws(key, indices))
            return pixels
        linear = isinstance(self.stretch, Uint8Stretch)  # the same before or after a rotation
        if augment is None or linear:
            first = images[0]
            dtype = first.dtype if first.dtype.kind == "f" else np.dtype(np.float32)
            pixels = _empty((len(images), *first.shape), dtype, shared and augment is None)
            out = pixels.numpy()
            for k, image in enumerate(images):  # gathered and stretched in one pass
                self.stretch.forward(image, out=out[k])
        if augment is not None:
            params = self._draws(key, indices)
            if linear:
                pixels = augment.apply(pixels, params)
            else:  # rotate linear flux, then stretch
                pixels = self.stretch.forward(
                    augment.apply(torch.from_numpy(np.stack(images)), params))
        lo, hi = self.pixel_range
        if (lo, hi) != (-1.0, 1.0):
            out = pixels.numpy()
            out += 1.0
            out *= (hi - lo) / 2.0
            out += lo
        return pixels

    def _captions(self, captions: list[str], indices: np.ndarray,
                  key: np.uint64) -> list[str]:
        if self.shuffle_caption_tags:
            # At most count(",") + 1 tags per caption: one key each beyond the kept ones.
            width = max(max((c.count(",") for c in captions), default=0) + 1
                        - self.caption_keep_first, 0)
            keys = shards.item_uniforms(key, indices, _TAG_DRAWS, width)
            captions = shuffle_tags_by_keys(captions, keys, keep_first=self.caption_keep_first)
        if self.caption_dropout > 0.0:  # "" is the unconditional sample of classifier-free guidance
            drop = shards.item_uniforms(key, indices, _DROPOUT_DRAW, 1)[:, 0] < self.caption_dropout
            captions = ["" if d else c for c, d in zip(captions, drop.tolist())]
        return captions


class StoreBatches(IterableDataset):
    """The whole batches of a StoreDataset (`StoreDataset.batches`), for a DataLoader with
    batch_size=None: what StoreLoader reads. The DataLoader takes them from its workers
    in turn exactly as it took the batches it made from items."""

    def __init__(self, dataset: StoreDataset) -> None:
        super().__init__()
        self.dataset = dataset

    def __iter__(self):
        return self.dataset.batches()


def to_model_pixels(pixels: torch.Tensor, pixel_range: tuple[float, float] = (-1.0, 1.0),
                    *, device: torch.device | str | None = None,
                    augment: GalaxyAugment | None = None,
                    augment_params: torch.Tensor | None = None) -> torch.Tensor:
    """A pixel_dtype="uint8" batch's pixel_values as the float32 path would have made
    them, computed on `device` after moving the uint8 bytes there: the same correctly
    rounded x / 127.5 - 1, the batch's `augment_params` applied with `augment` (the
    dataset's; rotation by any angle resamples here, on the device), then the range's
    affine map in float32. On CPU bit for bit the float path's values; on a GPU its
    bilinear resampling may differ from the CPU's in the last bits."""
    if pixels.dtype != torch.uint8:
        raise ValueError(f"to_model_pixels takes uint8 pixel_values, got {pixels.dtype}")
    if (augment_params is None) != (augment is None):
        raise ValueError("to_model_pixels needs both the dataset's augment and the batch's "
                         "augment_params, or neither")
    x = pixels.to(device, non_blocking=True) if device is not None else pixels
    y = Uint8Stretch().forward(x)
    if augment is not None:
        y = augment.apply(y, [AugmentParams(float(a), bool(h), bool(v))
                              for a, h, v in augment_params.tolist()])
    lo, hi = pixel_range
    if (lo, hi) != (-1.0, 1.0):
        y.add_(1.0).mul_((hi - lo) / 2.0).add_(lo)
    return y


def _empty(shape: tuple[int, ...], dtype: np.dtype, shared: bool) -> torch.Tensor:
    """An uninitialised tensor; in a DataLoader worker in shared memory (as default_collate
    makes its batches there), so that it crosses to the main process without another copy."""
    if not shared:
        return torch.from_numpy(np.empty(shape, dtype))
    like = torch.empty(0, dtype=torch.from_numpy(np.empty(0, dtype)).dtype)
    storage = like._typed_storage()._new_shared(int(np.prod(shape)), device=like.device)
    return like.new(storage).view(shape)


def _items_of(batch: dict[str, Any]):
    pixels, captions = batch.get("pixel_values"), batch.get("caption")
    conditions = batch.get("conditions")
    for k, index in enumerate(batch["index"].tolist()):
        item: dict[str, Any] = {"index": index}
        if pixels is not None:
            item["pixel_values"] = pixels[k]
        if captions is not None:
            item["caption"] = captions[k]
        if conditions is not None:
            item["conditions"] = conditions[k]
        yield item


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    if get_worker_info() is None:
        # numpy's single-threaded copy: see _items on torch's threads in the main process
        return torch.from_numpy(np.stack([t.numpy() for t in tensors]))
    # In a DataLoader worker, stack straight into shared memory, as torch's default_collate
    # does: the batch then crosses to the main process without another copy.
    first = tensors[0]
    storage = first._typed_storage()._new_shared(len(tensors) * first.numel(),
                                                 device=first.device)
    out = first.new(storage).resize_(len(tensors), *first.shape)
    return torch.stack(tensors, out=out)


def collate_items(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch StoreDataset items: pixel_values (B, C, H, W), index int64 (B,), caption
    list[str], conditions (B, K)."""
    batch: dict[str, Any] = {
        "index": torch.tensor([item["index"] for item in items], dtype=torch.int64),
    }
    if items and "pixel_values" in items[0]:
        batch["pixel_values"] = _stack([item["pixel_values"] for item in items])
    if items and "caption" in items[0]:
        batch["caption"] = [item["caption"] for item in items]
    if items and "conditions" in items[0]:
        batch["conditions"] = torch.stack([item["conditions"] for item in items])
    return batch
