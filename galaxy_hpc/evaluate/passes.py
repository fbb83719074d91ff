"""Which images a rank evaluates, read ahead of the work on them.

Work is split in whole batches of the global batch grid [0, B), [B, 2B), ...: an image is
always processed in the same batch whatever the number of ranks, so an extractor whose
numerics depend on the batch (most CPU/GPU kernels do, slightly) gives bit-identical
features on 1 or 64 ranks, and the same batches as torch-fidelity's single process.
Ranks take contiguous runs of batches (hpc.mpi.split_range), so reads are sequential.
Neighbouring batches are read together, up to a store shard (and READ_BUDGET_BYTES) at a
time: a store read has a fixed cost of its own (~3 ms for a zarr slice here), so reading
a 256-image shard at once costs 0.040 ms an image against 0.093 in slices of 64. A thread
reads the next group while the current one is processed (store reads release the GIL).

Every read of float images is checked for NaN and infinite pixels: the pass stops at the
first read that holds one and names the store and its items (galaxy_hpc.data.nonfinite),
on the real side as on the generated one, instead of feeding an extractor arbitrary
greys. One sum per image; uint8 stores have nothing to check. Such an error, met by one
rank, is made every rank's (`shared_failure`, hpc.comm.on_root): a rank that left alone would
leave the others waiting at their next collective for ever (MPI_Finalize included).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from galaxy_hpc.data.nonfinite import NonFinitePixels, check_read
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


def shared_failure(comm: Any, error: BaseException | None) -> None:
    """Call on every rank after a pass, with the NonFinitePixels it caught (None if none):
    every rank raises the first rank's error, or all go on."""
    failures = comm.allgather(None if error is None else str(error))
    first = next((failure for failure in failures if failure is not None), None)
    if first is not None:
        raise NonFinitePixels(first)


READ_BUDGET_BYTES = 64 << 20  # at most this much of a store in one read (two in memory)


def read_groups(bounds: list[tuple[int, int]], shard_size: int, item_bytes: int,
                budget: int = READ_BUDGET_BYTES) -> list[list[tuple[int, int]]]:
    """Consecutive batches put together into reads of at most one shard's worth of items
    (or `budget` bytes); a batch too large for either is a read of its own."""
    groups: list[list[tuple[int, int]]] = []
    for start, stop in bounds:
        if groups:
            first, last = groups[-1][0][0], groups[-1][-1][1]
            if (start == last and stop - first <= shard_size
                    and (stop - first) * item_bytes <= budget):
                groups[-1].append((start, stop))
                continue
        groups.append([(start, stop)])
    return groups


def read_batches(store: Store, bounds: list[tuple[int, int]], *, use: str = "evaluation"
                 ) -> Iterator[tuple[int, np.ndarray]]:
    """(start, images) for each (start, stop), the next group of batches read in the
    background while this one's are used. `use` names the evaluation in the error for
    non-finite pixels."""
    if not bounds:
        return
    spec = store.spec
    item_bytes = int(np.prod(spec.image_shape)) * np.dtype(spec.image_dtype).itemsize
    groups = read_groups(bounds, spec.shard_size, item_bytes)

    def read(group: list[tuple[int, int]]) -> np.ndarray:
        start, stop = group[0][0], group[-1][1]
        images = store.read_images(start, stop)
        check_read(store, images, range(start, stop), use=use)
        return images

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read, groups[0])
        for k, group in enumerate(groups):
            images = pending.result()
            if k + 1 < len(groups):
                pending = pool.submit(read, groups[k + 1])
            first = group[0][0]
            for start, stop in group:
                yield start, images[start - first:stop - first]


def read_at(store: Store, indices: np.ndarray, batch_size: int, *, use: str = "evaluation"
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(indices, images) in batches of the given (sorted) store indices."""
    for lo in range(0, len(indices), batch_size):
        chunk = indices[lo:lo + batch_size]
        images = store.read_images_at(chunk)
        check_read(store, images, chunk, use=use)
        yield chunk, images


def progress(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr (rank 0 only: callers pass enabled=False elsewhere)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled, file=sys.stderr,
                leave=False)
