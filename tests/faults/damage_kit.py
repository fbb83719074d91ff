"""Ways to damage a store, as disks, copies and people do, for the fault-injection tests.

Each function damages one file of a finalized store (Zarr v3 sharded, or HDF5 master +
`.shards/`) and returns that file's path relative to the store's folder, which the error
must name. Shard 1 (items SHARD_SIZE .. 2 * SHARD_SIZE - 1) is the usual victim; `flip`
changes one byte inside the stored image of item FLIPPED, found through the shard's own
index (zarr) or HDF5's chunk table, so that it hits data, not padding.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

SHARD = 1
SHARD_SIZE = 8
NUM_ITEMS = 24
FLIPPED = SHARD * SHARD_SIZE + 2  # the item whose image `flip` changes
KINDS = ("delete", "empty", "truncate", "flip", "column")
IMAGE_KINDS = KINDS[:4]


def build_store(path: Path, seed: int = 0) -> Path:
    """A small finalized store (.zarr or .h5 by name): 24 uint8 3x16x16 images in shards
    of 8, columns id, redshift, spiral. Item 0 is all black and `spiral` all False, so
    zarr leaves holes that are data (the checks must accept them)."""
    from hpc.store import StoreSpec, create_store, finalize_store

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (NUM_ITEMS, 3, 16, 16), dtype=np.uint8)
    images[0] = 0
    columns = {"id": [f"g{seed}-{i}" for i in range(NUM_ITEMS)],
               "redshift": rng.random(NUM_ITEMS), "spiral": np.zeros(NUM_ITEMS, bool)}
    backend = "zarr" if Path(path).suffix == ".zarr" else "hdf5"
    spec = StoreSpec(image_shape=(3, 16, 16), shard_size=SHARD_SIZE, backend=backend,
                     columns={"id": "str", "redshift": "float64", "spiral": "bool"})
    writer = create_store(path, spec, num_items=NUM_ITEMS)
    for shard in range(writer.num_shards):
        a, b = writer.shard_bounds(shard)
        writer.write_shard(shard, images[a:b], {k: v[a:b] for k, v in columns.items()})
    finalize_store(path)
    return Path(path)


def copy_store(source: Path, target: Path) -> Path:
    """A copy under another name (an HDF5 store: master and folder, renamed together)."""
    import shutil

    if source.suffix == ".zarr":
        shutil.copytree(source, target)
    else:
        shutil.copy(source, target)
        shutil.copytree(source.with_name(source.name + ".shards"),
                        target.with_name(target.name + ".shards"))
    return target


def shard_file(store: Path, shard: int = SHARD) -> Path:
    if store.suffix == ".zarr":
        return store / "images" / "c" / str(shard) / "0" / "0" / "0"
    return store.with_name(store.name + ".shards") / f"shard-{shard:06d}.h5"


def relative(store: Path, file: Path) -> str:
    base = store if store.suffix == ".zarr" else store.parent
    return str(file.relative_to(base))


def chunk_span(store: Path, position: int, shard: int = SHARD) -> tuple[int, int]:
    """(byte offset, size) of the image at `position` within the shard, in its file."""
    file = shard_file(store, shard)
    if store.suffix == ".zarr":
        raw = file.read_bytes()
        import json

        chunks = json.loads((store / "images" / "zarr.json").read_text())["chunk_grid"]
        per_shard = chunks["configuration"]["chunk_shape"][0]
        index = np.frombuffer(raw[-(16 * per_shard + 4):-4], "<u8").reshape(-1, 2)
        return int(index[position, 0]), int(index[position, 1])
    with h5py.File(file, "r") as handle:
        info = handle["images"].id.get_chunk_info(position)
        return int(info.byte_offset), int(info.size)


def flip_byte(file: Path, offset: int) -> None:
    data = bytearray(file.read_bytes())
    data[offset] ^= 0xFF
    file.write_bytes(bytes(data))


def damage(store: Path, kind: str, position: int = FLIPPED - SHARD * SHARD_SIZE,
           column: str = "redshift") -> str:
    """Damage `store` in the way `kind` names; the file hurt, relative to the store."""
    store = Path(store)
    file = shard_file(store)
    if kind == "delete":
        file.unlink()
    elif kind == "empty":
        file.write_bytes(b"")
    elif kind == "truncate":
        data = file.read_bytes()
        file.write_bytes(data[: len(data) * 2 // 3])
    elif kind == "flip":
        offset, size = chunk_span(store, position)
        flip_byte(file, offset + size // 2)
    elif kind == "column":
        if store.suffix == ".zarr":  # a deleted column chunk (zarr would read 0.0)
            file = store / "columns" / column / "c" / str(SHARD)
            file.unlink()
        else:  # columns live in the master: a flipped byte of one (fletcher32)
            with h5py.File(store, "r") as master:
                info = master["columns"][column].id.get_chunk_info(0)
            file = store
            flip_byte(file, int(info.byte_offset) + int(info.size) // 2)
    else:
        raise ValueError(f"unknown damage {kind!r}; one of {', '.join(KINDS)}")
    return relative(store, file)
