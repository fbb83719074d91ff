"""Who reads what, in which order: the arithmetic behind StoreDataset, free of I/O.

An epoch's order is a permutation of the store's shards, from (seed, epoch) alone. Lay
the shards end to end in that order: this *epoch sequence* holds every item once. Rank r
takes one contiguous span of it; inside the rank, each DataLoader worker takes one
contiguous sub-span made of whole batches. A span covers whole shards except at most
the two at its ends, and every span is read as (shard, start, stop) *pieces*, one
`read_images` call each.

Why spans of the shard order rather than dealing whole shards round-robin:
- balance: ranks differ by at most one item (drop_last=False), or are exactly equal
  dropping fewer than world_size x batch_size items (drop_last=True); dealing whole
  shards leaves a rank up to a shard behind, and drop_last would then discard up to a
  shard per rank;
- small stores: 3 shards still feed 8 ranks x 4 workers (an evaluation set, a test).
The shards dropped by drop_last change each epoch with the permutation.

Workers' spans are whole batches so that every batch the DataLoader makes is full but the
last. The DataLoader takes batches from its workers round-robin, skipping exhausted ones
(torch's `_MultiProcessingDataLoaderIter` with in_order=True); `batch_schedule` replays
that, which is how a count of samples seen maps to a position in each worker's span
(`resume_position`), for exact mid-epoch resume.
"""

from __future__ import annotations

import numpy as np

# Distinct random streams under one (seed, epoch): shard order [seed, epoch, 0]; window
# shuffles [seed, epoch, position, 1]; per-item randomness keyed by [seed, epoch, 2].
STREAM_SHARDS, STREAM_WINDOW, STREAM_ITEM = 0, 1, 2

# splitmix64 (Steele, Lea & Flood 2014): the golden-ratio increment and the finaliser.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = (np.uint64(30), np.uint64(0xBF58476D1CE4E5B9), np.uint64(27),
        np.uint64(0x94D049BB133111EB), np.uint64(31))


def shard_order(num_shards: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The epoch's shard order: a permutation from (seed, epoch), or 0..S-1."""
    if not shuffle:
        return np.arange(num_shards)
    return np.random.default_rng([seed, epoch, STREAM_SHARDS]).permutation(num_shards)


def item_key(seed: int, epoch: int) -> np.uint64:
    """The key of an epoch's per-item draws: (seed, epoch) hashed by numpy's SeedSequence
    (any size of integer, well mixed)."""
    return np.random.SeedSequence([seed, epoch, STREAM_ITEM]).generate_state(1, np.uint64)[0]


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place on a uint64 array (a bijection; numpy wraps)."""
    s1, m1, s2, m2, s3 = _MIX
    z ^= z >> s1
    z *= m1
    z ^= z >> s2
    z *= m2
    z ^= z >> s3
    return z


def item_uniforms(key: np.uint64, indices: np.ndarray, first: int, count: int) -> np.ndarray:
    """Uniforms in [0, 1), float64 (len(indices), count): draws first..first+count-1 of
    each item's stream. Draw k of item i is a pure function of (key, i, k), so an item's
    augmentation, caption order and dropout do not depend on which rank, worker or batch
    reads it, nor on the other draws taken. Counter-based, vectorised over a batch: a
    splitmix64 sequence per item, started at the splitmix64 hash of its index under key.
    (One numpy Generator per item cost ~34 us of seeding each.)"""
    z = np.asarray(indices, dtype=np.int64).astype(np.uint64)
    z *= _GOLDEN
    z += key
    base = _mix64(z)
    steps = np.arange(first + 1, first + count + 1, dtype=np.uint64)
    steps *= _GOLDEN
    draws = _mix64(base[:, None] + steps[None, :])
    draws >>= np.uint64(11)
    return draws * 2.0**-53  # the top 53 bits: every double of [0, 1) on the 2^-53 grid


def rank_count(num_items: int, rank: int, world_size: int, drop_last: bool,
               batch_size: int) -> int:
    lo, hi = rank_span(num_items, rank, world_size, drop_last, batch_size)
    return hi - lo


def rank_span(num_items: int, rank: int, world_size: int, drop_last: bool,
              batch_size: int) -> tuple[int, int]:
    """[lo, hi) of the epoch sequence read by rank. drop_last: the same count on every
    rank, a multiple of batch_size, so that every rank makes the same number of full
    batches (DDP and ZeRO wait at every step for all ranks)."""
    if drop_last:
        per_rank = num_items // world_size // batch_size * batch_size
        return rank * per_rank, (rank + 1) * per_rank
    return rank * num_items // world_size, (rank + 1) * num_items // world_size


def worker_span(count: int, worker: int, num_workers: int, batch_size: int) -> tuple[int, int]:
    """[lo, hi) of a rank's `count` items read by one of num_workers workers: contiguous
    runs of whole batches (only the last worker's last batch may be short)."""
    if num_workers <= 1:
        return 0, count
    num_batches = -(-count // batch_size)
    first = worker * num_batches // num_workers
    last = (worker + 1) * num_batches // num_workers
    return min(first * batch_size, count), min(last * batch_size, count)


def worker_counts(count: int, num_workers: int, batch_size: int) -> list[int]:
    """Items per worker; num_workers=0 (reading in the main process) is one stream."""
    spans = [worker_span(count, k, num_workers, batch_size) for k in range(max(num_workers, 1))]
    return [hi - lo for lo, hi in spans]


def pieces(order: np.ndarray, shard_starts: np.ndarray, shard_sizes: np.ndarray,
           lo: int, hi: int) -> list[tuple[int, int]]:
    """Item ranges [start, stop), one per shard, covering positions [lo, hi) of the epoch
    sequence (shards laid end to end in `order`)."""
    sizes = shard_sizes[order]
    ends = np.cumsum(sizes)
    begins = ends - sizes
    out = []
    for j in np.flatnonzero((begins < hi) & (ends > lo)).tolist():
        a, b = max(lo, int(begins[j])), min(hi, int(ends[j]))
        first = int(shard_starts[order[j]]) + a - int(begins[j])
        out.append((first, first + b - a))
    return out


def batch_schedule(counts: list[int], batch_size: int) -> list[tuple[int, int]]:
    """(worker, batch size) of every batch, in the order a DataLoader yields them: round
    robin over workers, each worker's items cut into batches, exhausted workers skipped."""
    left = list(counts)
    schedule = []
    while any(left):
        for worker, remaining in enumerate(left):
            if remaining:
                size = min(batch_size, remaining)
                schedule.append((worker, size))
                left[worker] -= size
    return schedule


def resume_position(counts: list[int], batch_size: int,
                    samples_seen: int) -> tuple[list[int], int]:
    """Where each worker is once a DataLoader has yielded `samples_seen` samples (whole
    batches), and which worker the next batch comes from.

    A new DataLoader always starts its round robin at worker 0, so a resumed pass gives
    worker j the role (span and position) of worker (first + j) % num_workers: its
    batches then come out in the order the uninterrupted run would have given them."""
    if not 0 <= samples_seen <= sum(counts):
        raise ValueError(f"samples_seen must lie in [0, {sum(counts)}] (this rank's items per "
                         f"epoch), got {samples_seen}")
    offsets = [0] * len(counts)
    left = samples_seen
    for worker, size in batch_schedule(counts, batch_size):
        if left <= 0:
            return offsets, worker
        if left < size:
            raise ValueError(f"samples_seen={samples_seen} ends inside a batch: resume needs "
                             f"a count of whole batches of {batch_size}")
        offsets[worker] += size
        left -= size
    return offsets, 0


def windows(ranges: list[tuple[int, int]], size: int) -> list[list[tuple[int, int]]]:
    """Consecutive groups of `size` pieces: the unit of shuffling (read, then permuted)."""
    return [ranges[i:i + size] for i in range(0, len(ranges), size)]
