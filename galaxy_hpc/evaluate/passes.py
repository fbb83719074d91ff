"""Which images a rank evaluates, read ahead of the work on them.

Work is split in whole batches of the global batch grid [0, B), [B, 2B), ...: an image is
always processed in the same batch whatever the number of ranks, so an extractor whose
numerics depend on the batch (most CPU/GPU kernels do, slightly) gives bit-identical
features on 1 or 64 ranks, and the same batches as torch-fidelity's single process.
Ranks take contiguous runs of batches (hpc.mpi.split_range), so reads are sequential.
A thread reads the next batch while the current one is processed (store reads release
the GIL).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hpc.mpi import split_range
from hpc.store import Store


def rank_batches(num_items: int, batch_size: int, rank: int, world_size: int
                 ) -> list[tuple[int, int]]:
    num_batches = -(-num_items // batch_size)
    return [(b * batch_size, min(num_items, (b + 1) * batch_size))
            for b in split_range(num_batches, rank, world_size)]


def spaced_indices(num_items: int, limit: int) -> np.ndarray:
    """At most `limit` indices spread evenly over [0, num_items) (all when fewer)."""
    if num_items <= limit:
        return np.arange(num_items)
    return np.unique(np.linspace(0, num_items - 1, limit).round().astype(np.int64))


def read_batches(store: Store, bounds: list[tuple[int, int]]
                 ) -> Iterator[tuple[int, np.ndarray]]:
    """(start, images) for each (start, stop), the next read running in the background."""
    if not bounds:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(store.read_images, *bounds[0])
        for k, (start, _) in enumerate(bounds):
            images = pending.result()
            if k + 1 < len(bounds):
                pending = pool.submit(store.read_images, *bounds[k + 1])
            yield start, images


def read_at(store: Store, indices: np.ndarray, batch_size: int
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(indices, images) in batches of the given (sorted) store indices."""
    for lo in range(0, len(indices), batch_size):
        chunk = indices[lo:lo + batch_size]
        yield chunk, store.read_images_at(chunk)


def progress(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr (rank 0 only: callers pass enabled=False elsewhere)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr,
                leave=False)
