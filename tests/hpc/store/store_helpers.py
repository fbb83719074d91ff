"""Shared by the store tests and by the worker processes they start (spawned workers
import this module by name, so it holds no fixtures)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from hpc.store import StoreSpec, compact_staging, create_store, open_staging, open_store_for_writing

COLUMNS = {
    "id": "str",
    "caption": "str",
    "redshift": "float64",
    "mag": "float32",
    "n": "int64",
    "spiral": "bool",
}
_WORDS = ["spiral", "élliptique", "银河", "🌌 merger", "", "bar\ttab", 'quote"d', "ring\n"]


def make_spec(
    backend: str = "zarr", dtype: str = "uint8", shard_size: int = 4, shape=(3, 8, 8), **kw
) -> StoreSpec:
    return StoreSpec(
        image_shape=shape,
        image_dtype=dtype,
        columns=dict(COLUMNS),
        shard_size=shard_size,
        backend=backend,
        **kw,
    )


def make_items(count: int, dtype: str = "uint8", shape=(3, 8, 8), seed: int = 0):
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        images = rng.integers(0, 256, (count, *shape), dtype=np.uint8)
    else:
        images = rng.normal(0, 1, (count, *shape)).astype(np.float32)
    columns = {
        "id": [f"obj-{seed}-{i:05d}" for i in range(count)],
        "caption": [" ".join(rng.choice(_WORDS, 3)) for _ in range(count)],
        "redshift": rng.random(count),
        "mag": rng.normal(20, 2, count).astype(np.float32),
        "n": rng.integers(-(2**62), 2**62, count),
        "spiral": rng.random(count) > 0.5,
    }
    return images, columns


def store_path(root: Path, backend: str, name: str = "store") -> Path:
    return Path(root) / f"{name}.{'zarr' if backend == 'zarr' else 'h5'}"


def write_shards(writer, images, columns, shards=None) -> None:
    for shard in writer.pending_shards() if shards is None else shards:
        start, stop = writer.shard_bounds(shard)
        writer.write_shard(
            shard, images[start:stop], {k: v[start:stop] for k, v in columns.items()}
        )


def wait_for_peers(gate: Path, rank: int, world: int) -> None:
    """A start line: every worker waits until all have arrived, so writes overlap."""
    gate.mkdir(parents=True, exist_ok=True)
    (gate / f"rank{rank}").touch()
    deadline = time.monotonic() + 60
    while len(os.listdir(gate)) < world:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(os.listdir(gate))} of {world} workers reached {gate}")
        time.sleep(0.005)


# -- worker-process entry points ---------------------------------------------------------


def writer_worker(
    path: str, spec: StoreSpec, num_items: int, rank: int, world: int, race_create: bool
) -> list[int]:
    """Write shards j % world == rank of the deterministic items; optionally every rank races
    to create the store."""
    images, columns = make_items(num_items, spec.image_dtype, spec.image_shape)
    wait_for_peers(Path(path + f".gate{world}"), rank, world)
    writer = (
        create_store(path, spec, num_items=num_items)
        if race_create
        else open_store_for_writing(path)
    )
    mine = [j for j in writer.pending_shards() if j % world == rank]
    write_shards(writer, images, columns, mine)
    return mine


def part_worker(path: str, spec: StoreSpec, counts: list[int], rank: int, world: int) -> None:
    staging = open_staging(path, spec)
    wait_for_peers(Path(path + ".gate-parts"), rank, world)
    for part, (images, columns) in enumerate(part_items(counts, spec)):
        if part % world == rank:
            staging.write_part(part, images, columns)


def compact_worker(path: str, rank: int, world: int) -> list[int]:
    wait_for_peers(Path(path + ".gate-compact"), rank, world)
    return compact_staging(path, rank, world, attrs={"stage": "compacted"})


def part_items(counts: list[int], spec: StoreSpec):
    for part, count in enumerate(counts):
        yield make_items(count, spec.image_dtype, spec.image_shape, seed=100 + part)


def read_worker(store, start: int, stop: int) -> np.ndarray:
    return store.read_images(start, stop)


def read_with_fd_limit(path: str, limit: int):
    """Read a whole store while at most `limit` files may be open (HDF5's VDS would need
    one per shard and silently return fill values past the limit)."""
    import resource

    from hpc.store import open_store

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        store = open_store(path)
        return (
            store.read_images(),
            store.read_images_at(list(range(len(store)))[::-1]),
            store.read_column("id"),
        )
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def read_in_forked_child(store, start: int, stop: int, queue) -> None:
    """Runs in a fork()ed child whose parent already read with zarrs."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = store.read_images(start, stop)
    queue.put((images, [str(w.message) for w in caught]))
