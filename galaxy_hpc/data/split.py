"""The held-out split every trainer shares, and the store view that leaves it out.

An item is held out when a hash of (seed, its store index) falls below the fraction:
the same items on every rank, in every epoch, under any rank or worker count and after
a resume, without a second store. The training dataset reads the store through
`ItemSubset` over the other items, so no held-out item is ever in a training batch;
the validation pass reads the held-out ones (galaxy_hpc/train/validation.py), and the
DINOv2 regressor evaluates its export on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from galaxy_hpc.data.shards import _GOLDEN, _mix64

RULE = "item i is held out when splitmix64(seed, i) < fraction (galaxy_hpc.data.split)"


def heldout_mask(num_items: int, *, fraction: float, seed: int) -> np.ndarray:
    """(N,) bool: item i is held out when a hash of (seed, i) is below `fraction`. Depends
    on nothing else (not the rank count, the epoch or the shard size); a larger fraction
    holds out a superset."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"validation seed must be an integer >= 0, got {seed!r}")
    key = _mix64(np.array([seed], dtype=np.uint64) + _GOLDEN)
    with np.errstate(over="ignore"):
        z = np.arange(num_items, dtype=np.uint64) * _GOLDEN + key
    uniform = (_mix64(z) >> np.uint64(11)) * 2.0**-53
    return uniform < fraction


@dataclass(frozen=True)
class Split:
    """Store indices, ascending: the ones trained on and the held-out ones."""

    train: np.ndarray
    heldout: np.ndarray
    fraction: float
    seed: int

    @classmethod
    def of(cls, num_items: int, *, fraction: float, seed: int) -> "Split":
        mask = heldout_mask(num_items, fraction=fraction, seed=seed)
        return cls(np.flatnonzero(~mask), np.flatnonzero(mask), float(fraction), int(seed))

    @property
    def mask(self) -> np.ndarray:
        """(N,) bool, True where held out."""
        out = np.zeros(len(self.train) + len(self.heldout), dtype=bool)
        out[self.heldout] = True
        return out

    def describe(self) -> dict[str, Any]:
        """What a run records about its split (enough to redraw it)."""
        return {"fraction": self.fraction, "seed": self.seed, "num_heldout": len(self.heldout),
                "num_train": len(self.train), "rule": RULE}


class ItemSubset:
    """Some items of a store (ascending indices), laid out as a store of their own: shards
    are the store's shards with the other items removed (empty ones dropped), positions
    run 0..len-1. StoreDataset reads it as it reads a store, in shard-sized slices, and
    maps positions back to store indices with `store_index` (augmentation, captions and
    conditions stay keyed by the store index)."""

    def __init__(self, store: Any, items: np.ndarray) -> None:
        items = np.asarray(items, dtype=np.int64)
        if items.ndim != 1 or (len(items) and (items[0] < 0 or items[-1] >= len(store)
                                               or np.any(np.diff(items) <= 0))):
            raise ValueError(f"{store.path}: a subset needs ascending, distinct indices in "
                             f"[0, {len(store)})")
        self.store, self.items = store, items
        shard_of = np.searchsorted([store.shard_bounds(j)[1] for j in range(store.num_shards)],
                                   items, side="right")
        counts = np.bincount(shard_of, minlength=store.num_shards)
        ends = np.cumsum(counts[counts > 0])
        self._bounds = list(zip((ends - counts[counts > 0]).tolist(), ends.tolist()))

    def __len__(self) -> int:
        return len(self.items)

    @property
    def num_shards(self) -> int:
        return len(self._bounds)

    def shard_bounds(self, shard: int) -> tuple[int, int]:
        return self._bounds[shard]

    def read_images(self, start: int, stop: int, **options: Any) -> np.ndarray:
        """Positions [start, stop) within one shard: one read of the store's span
        (`options`: Store.read_images', e.g. the decode device of a jpeg-source store)."""
        if start == stop:
            return self.store.read_images(0, 0, **options)
        rows = self.items[start:stop]
        return self.store.read_images(int(rows[0]), int(rows[-1]) + 1, **options)[rows - rows[0]]

    def store_index(self, positions: np.ndarray) -> np.ndarray:
        return self.items[positions]
