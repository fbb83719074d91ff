"""MPI helpers: who does which items, and summing statistics over ranks.

Splits are pure functions of (num_items, rank, world_size), so every rank
computes its share without talking, and a rerun with the same world gives the
same assignment. Reductions work on float64/int64 numpy buffers (no pickling
of large arrays) and keep memory independent of the number of items: ranks
exchange sums, never samples.

mpi4py is imported lazily: a process that was not started by an MPI launcher
gets a singleton COMM_WORLD of size 1, so the same code runs on a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def split_range(num_items: int, rank: int, world_size: int) -> range:
    """Contiguous block of [0, num_items) for `rank`; sizes differ by at most one.

    The first `num_items % world_size` ranks take one extra item.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of size {world_size}")
    if num_items < 0:
        raise ValueError(f"num_items must be >= 0, got {num_items}")
    base, extra = divmod(num_items, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def split_strided(num_items: int, rank: int, world_size: int) -> range:
    """Items rank, rank + world, ...: balances work whose cost drifts along the list."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of size {world_size}")
    return range(rank, max(num_items, 0), world_size)


def world() -> Any:
    """MPI.COMM_WORLD (size 1 when not launched by MPI)."""
    from mpi4py import MPI

    return MPI.COMM_WORLD


ALLREDUCE_PIECE = 1 << 20  # elements (8 MiB) per MPI_Allreduce call


def allreduce_sum(values: np.ndarray, comm: Any | None = None, *,
                  piece: int = ALLREDUCE_PIECE) -> np.ndarray:
    """Element-wise sum over ranks of a numeric array (float64 or int64 on the wire).

    Large arrays go in pieces of `piece` elements: one MPICH all-reduce of 34 MB (the FID
    sums of two stores) took 0.12 s the first time in a process and 0.024 s after; in
    pieces of 8 MiB it took 0.018 s the first time too (its shared-memory buffers are
    touched once, not once per byte sent)."""
    from mpi4py import MPI

    comm = comm or world()
    array = np.asarray(values)
    wire = np.int64 if np.issubdtype(array.dtype, np.integer) else np.float64
    send = np.ascontiguousarray(array, dtype=wire).reshape(-1)
    recv = np.empty_like(send)
    for lo in range(0, max(1, send.size), piece):
        comm.Allreduce(send[lo:lo + piece], recv[lo:lo + piece], op=MPI.SUM)
    return recv.reshape(array.shape)


@dataclass
class Moments:
    """Count, sum and sum of outer products of feature vectors, in float64.

    Enough for a mean and covariance (hence a Frechet distance) of any number
    of samples in O(dim^2) memory; two partial Moments add exactly, so ranks
    each accumulate their own and one all-reduce combines them.
    """

    dim: int
    count: int = 0
    total: np.ndarray = field(default=None)  # type: ignore[assignment]
    outer: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.total is None:
            self.total = np.zeros(self.dim, dtype=np.float64)
        if self.outer is None:
            self.outer = np.zeros((self.dim, self.dim), dtype=np.float64)

    def add(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim != 2 or samples.shape[1] != self.dim:
            raise ValueError(f"expected samples of shape (n, {self.dim}), got {samples.shape}")
        self.count += samples.shape[0]
        self.total += samples.sum(axis=0)
        self.outer += samples.T @ samples

    def merge(self, other: "Moments") -> "Moments":
        if other.dim != self.dim:
            raise ValueError(f"cannot merge moments of dim {other.dim} into dim {self.dim}")
        return Moments(self.dim, self.count + other.count, self.total + other.total,
                       self.outer + other.outer)

    def allreduce(self, comm: Any | None = None) -> "Moments":
        """The moments of all ranks' samples together, on every rank."""
        packed = np.concatenate([[float(self.count)], self.total, self.outer.ravel()])
        summed = allreduce_sum(packed, comm)
        return Moments(self.dim, int(round(summed[0])), summed[1:1 + self.dim],
                       summed[1 + self.dim:].reshape(self.dim, self.dim))

    @property
    def mean(self) -> np.ndarray:
        if self.count == 0:
            raise ValueError("no samples were added")
        return self.total / self.count

    def covariance(self, ddof: int = 1) -> np.ndarray:
        """Sample covariance (ddof=1, as numpy.cov and FID implementations use)."""
        if self.count <= ddof:
            raise ValueError(f"need more than {ddof} samples for a covariance, have {self.count}")
        mean = self.mean
        return (self.outer - self.count * np.outer(mean, mean)) / (self.count - ddof)
