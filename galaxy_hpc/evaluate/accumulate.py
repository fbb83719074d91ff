"""What one pass over a store's features leaves behind, per rank, and how ranks combine it.

FID needs only the count, sum and sum of outer products of the features (hpc.mpi.Moments,
float64, O(dim^2) whatever the number of images). The Inception Score needs, per split,
the count, the sum of the class probabilities p and the sum of p log p:

    KL_s = mean_k sum_c p_kc (log p_kc - log q_c) = (sum_k sum_c p log p) / n_s - sum_c q_c log q_c

with q = (sum_k p_k) / n_s, so it too is a sum. Which split an image is in follows
torch-fidelity exactly: a RandomState(seed) permutation of the N images cut into equal
runs (the one per-image array kept, 8 bytes per image). Both kinds of sums are packed
into one float64 buffer: one all-reduce for everything.

KID and precision/recall need the features themselves. At most `max_kept` per store are
kept: all of them when the store is no larger (then KID equals torch-fidelity's on the
same images), else a fixed RandomState(seed) choice of that many, the same for any
number of ranks. They travel by one allgather of each rank's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hpc.mpi import Moments


def kept_indices(num_items: int, max_kept: int, seed: int) -> np.ndarray:
    """Sorted store indices whose features are kept for KID / precision-recall."""
    if num_items <= max_kept:
        return np.arange(num_items, dtype=np.int64)
    chosen = np.random.RandomState(seed).choice(num_items, max_kept, replace=False)
    return np.sort(chosen).astype(np.int64)


class IscSplits:
    """Which of torch-fidelity's IS splits each image falls in (samples_shuffle=True)."""

    def __init__(self, num_items: int, splits: int, seed: int) -> None:
        if num_items < splits:
            raise ValueError(f"the Inception Score needs at least {splits} images (one per "
                             f"split), the store has {num_items}; lower isc_splits")
        permutation = np.random.RandomState(seed).permutation(num_items)
        self._position = np.empty(num_items, dtype=np.int64)
        self._position[permutation] = np.arange(num_items)
        self._bounds = np.array([i * num_items // splits for i in range(splits + 1)])
        self.splits = splits

    def of(self, indices: np.ndarray) -> np.ndarray:
        return np.searchsorted(self._bounds, self._position[indices], side="right") - 1


@dataclass
class IscSums:
    splits: int
    num_classes: int
    count: np.ndarray = field(default=None)  # type: ignore[assignment]
    p_sum: np.ndarray = field(default=None)  # type: ignore[assignment]
    plogp_sum: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.count is None:
            self.count = np.zeros(self.splits)
            self.p_sum = np.zeros((self.splits, self.num_classes))
            self.plogp_sum = np.zeros(self.splits)

    def add(self, logits: torch.Tensor, split: np.ndarray) -> None:
        logits = logits.double()
        p = logits.softmax(dim=1)
        plogp = (p * logits.log_softmax(dim=1)).sum(dim=1).numpy()
        p = p.numpy()
        for s in np.unique(split):
            rows = split == s
            self.count[s] += rows.sum()
            self.p_sum[s] += p[rows].sum(axis=0)
            self.plogp_sum[s] += plogp[rows].sum()

    def scores(self) -> np.ndarray:
        """exp(KL) of every split (what torch-fidelity averages)."""
        q = self.p_sum / self.count[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            q_log_q = np.where(q > 0, q * np.log(q), 0.0).sum(axis=1)
        return np.exp(self.plogp_sum / self.count - q_log_q)

    def packed(self) -> np.ndarray:
        return np.concatenate([self.count, self.p_sum.ravel(), self.plogp_sum])

    def unpacked(self, values: np.ndarray) -> "IscSums":
        s, c = self.splits, self.num_classes
        return IscSums(s, c, values[:s].copy(), values[s:s + s * c].reshape(s, c).copy(),
                       values[s + s * c:].copy())

    @property
    def size(self) -> int:
        return self.splits * (self.num_classes + 2)


@dataclass
class StoreStats:
    """The combined statistics of one store: what metrics are computed from and the cache
    holds."""

    num_items: int
    moments: Moments
    isc: IscSums | None
    kept_index: np.ndarray  # (K,) int64, sorted
    kept: dict[str, np.ndarray]  # layer -> (K, D) float32


class StoreAccumulator:
    """One rank's share of a store's statistics; `combine` (collective) gives StoreStats."""

    def __init__(self, num_items: int, layers: dict[str, str], dims: dict[str, int], *,
                 max_kept: int, isc_splits: int, seed: int) -> None:
        self.num_items = num_items
        self.layers = layers
        self.moments = Moments(dims[layers["fid"]])
        self.isc_splits = IscSplits(num_items, isc_splits, seed) if "isc" in layers else None
        self.isc = IscSums(isc_splits, dims[layers["isc"]]) if "isc" in layers else None
        self.kept_layers = sorted({layers[m] for m in ("kid", "prc") if m in layers})
        self.kept_index = kept_indices(num_items, max_kept, seed) if self.kept_layers \
            else np.empty(0, dtype=np.int64)
        self._rows: list[np.ndarray] = []
        self._kept: dict[str, list[np.ndarray]] = {layer: [] for layer in self.kept_layers}

    def add(self, start: int, features: dict[str, torch.Tensor]) -> None:
        """Features of store items start, start + 1, ... (one batch)."""
        fid = features[self.layers["fid"]]
        indices = np.arange(start, start + fid.shape[0])
        self.moments.add(fid.numpy())
        if self.isc is not None:
            self.isc.add(features[self.layers["isc"]], self.isc_splits.of(indices))
        if self.kept_layers:
            lo, hi = np.searchsorted(self.kept_index, [indices[0], indices[-1] + 1])
            if hi > lo:
                rows = self.kept_index[lo:hi] - start
                self._rows.append(self.kept_index[lo:hi])
                for layer in self.kept_layers:
                    self._kept[layer].append(features[layer].numpy()[rows])

    def packed(self) -> np.ndarray:
        m = self.moments
        parts = [[float(m.count)], m.total, m.outer.ravel()]
        if self.isc is not None:
            parts.append(self.isc.packed())
        return np.concatenate(parts)

    def packed_size(self) -> int:
        d = self.moments.dim
        return 1 + d + d * d + (self.isc.size if self.isc is not None else 0)

    def local_kept(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        rows = np.concatenate(self._rows) if self._rows else np.empty(0, dtype=np.int64)
        return rows, {layer: (np.concatenate(parts) if parts else np.empty((0, 0), np.float32))
                      for layer, parts in self._kept.items()}

    def stats(self, summed: np.ndarray, gathered: list[Any]) -> StoreStats:
        """StoreStats from this store's slice of the all-reduced buffer and the allgathered
        (rows, kept) pairs of every rank."""
        d = self.moments.dim
        moments = Moments(d, int(round(summed[0])), summed[1:1 + d].copy(),
                          summed[1 + d:1 + d + d * d].reshape(d, d).copy())
        isc = self.isc.unpacked(summed[1 + d + d * d:]) if self.isc is not None else None
        rows = np.concatenate([r for r, _ in gathered]) if gathered else np.empty(0, np.int64)
        order = np.argsort(rows, kind="stable")
        kept = {layer: np.concatenate([k[layer] for r, k in gathered if len(r)])[order]
                if len(rows) else np.empty((0, 0), np.float32) for layer in self.kept_layers}
        if moments.count != self.num_items or not np.array_equal(rows[order], self.kept_index):
            raise RuntimeError(f"ranks saw {moments.count} of {self.num_items} images: the "
                               "work split is inconsistent between ranks")
        return StoreStats(self.num_items, moments, isc, rows[order], kept)
