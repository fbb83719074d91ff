"""Per-object randomness and the fixed batches objects are made in.

Object i of a catalog with seed s gets its own seed, a pure function of (s, i), and every
random number drawn for it (initial latents, ancestral sampler noise, which condition row
it uses) comes from streams keyed by that pair. Nothing depends on which rank made the
object, what else that rank made, or how often the job was restarted.

Random numbers alone do not make bytes reproducible: a batched UNet call does not give
each image bit-for-bit what a call on that image alone gives (matrix kernels block the
batch dimension differently; measured on CPU, batch 8 vs 1 changed 2 of 24,576 uint8
pixels of a tiny SD model). So batches are fixed too: batch k of shard j holds objects
[j*S + k*B, j*S + (k+1)*B) clipped to the shard (S shard_size, B batch_size), whoever
makes it. Regenerating one object recomputes its batch and keeps that one image.
"""

from __future__ import annotations

import numpy as np

# Streams of SeedSequence([stream, catalog seed, object index]).
STREAM_OBJECT = 0  # the object's torch seed (latents, sampler noise)
STREAM_CONDITION = 1  # which condition row a sampled object uses

_SEED_MASK = (1 << 63) - 1  # non-negative int64: a FITS column and torch.manual_seed take it


def object_seed(catalog_seed: int, index: int) -> int:
    """The torch seed of object `index`: torch.Generator().manual_seed(object_seed(s, i))."""
    state = np.random.SeedSequence([STREAM_OBJECT, int(catalog_seed), int(index)])
    return int(state.generate_state(1, np.uint64)[0]) & _SEED_MASK


def object_seeds(catalog_seed: int, indices: np.ndarray) -> np.ndarray:
    return np.array([object_seed(catalog_seed, i) for i in np.asarray(indices).tolist()],
                    dtype=np.int64)


def condition_uniforms(catalog_seed: int, indices: np.ndarray) -> np.ndarray:
    """One uniform in [0, 1) per object, for drawing its condition row."""
    return np.array([
        np.random.default_rng(np.random.SeedSequence([STREAM_CONDITION, int(catalog_seed), i]))
        .random() for i in np.asarray(indices).tolist()], dtype=np.float64)


def shard_batches(start: int, stop: int, batch_size: int) -> list[np.ndarray]:
    """The fixed batches of the shard holding objects [start, stop)."""
    return [np.arange(first, min(first + batch_size, stop), dtype=np.int64)
            for first in range(start, stop, batch_size)]


def batch_of(index: int, shard_size: int, batch_size: int, num_objects: int) -> np.ndarray:
    """The batch object `index` is made in (what regenerating it alone recomputes)."""
    if not 0 <= index < num_objects:
        raise ValueError(f"object {index} is not in the catalog: it has objects "
                         f"0..{num_objects - 1}")
    start = (index // shard_size) * shard_size
    stop = min(start + shard_size, num_objects)
    first = start + ((index - start) // batch_size) * batch_size
    return np.arange(first, min(first + batch_size, stop), dtype=np.int64)
