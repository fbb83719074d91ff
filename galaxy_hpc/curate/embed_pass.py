"""Every item's embeddings, split over ranks by store shard, one file per shard.

Ranks take contiguous runs of the store's shards (hpc.mpi.split_range) and write
`embeddings/shard-NNNNNN.npz` (the (n, T, D) float32 embeddings and a sha256 of each
image's bytes) by atomic rename, so a killed job run again embeds only the shards it had
not finished. `embeddings/meta.json` records what the files were made from (the store's
checksum, the extractor, the transforms, the pixel map): when that differs, the old
files are removed first, never mixed with new ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.curate.embedders import Embedder
from galaxy_hpc.data.nonfinite import check_read
from galaxy_hpc.evaluate.inputs import ExtractorInput
from hpc.comm import Comm
from hpc.mpi import split_range
from hpc.store import Store


def shard_file(folder: Path, shard: int) -> Path:
    return folder / f"shard-{shard:06d}.npz"


def prepare_folder(folder: Path, meta: dict[str, Any], comm: Comm) -> None:
    """Rank 0 keeps the folder when its meta matches, else empties it; all wait."""
    if comm.rank == 0:
        meta_file = folder / "meta.json"
        try:
            same = json.loads(meta_file.read_text()) == meta
        except (OSError, json.JSONDecodeError):
            same = False
        if not same and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta_file.write_text(json.dumps(meta, indent=1, sort_keys=True))
    comm.barrier()


def image_hashes(images: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 sha256 of each image's bytes (C order, little-endian)."""
    wire = np.ascontiguousarray(images, dtype=images.dtype.newbyteorder("<"))
    return np.stack([np.frombuffer(hashlib.sha256(memoryview(image).cast("B")).digest(),
                                   dtype=np.uint8) for image in wire])


def embed_shards(store: Store, folder: Path, embedder: Embedder, pixels: ExtractorInput, *,
                 transforms: str, batch_size: int, comm: Comm, bar: Any) -> dict[str, int]:
    """This rank's shards, skipping those already on disk; counts of embedded and resumed."""
    spec = store.spec
    num_shards = -(-len(store) // spec.shard_size)
    done = {"embedded": 0, "resumed": 0}
    for shard in split_range(num_shards, comm.rank, comm.size):
        target = shard_file(folder, shard)
        start = shard * spec.shard_size
        stop = min(len(store), start + spec.shard_size)
        if target.is_file():
            done["resumed"] += stop - start
            bar.update(stop - start)
            continue
        images = store.read_images(start, stop)
        check_read(store, images, range(start, stop), use="dedup")
        parts = []
        for lo in range(0, len(images), batch_size):
            batch = pixels.to_uint8(images[lo:lo + batch_size])
            parts.append(embedder.embed(batch, transforms))
            bar.update(len(batch))
        tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, embeddings=np.concatenate(parts), image_sha256=image_hashes(images))
        os.replace(tmp, target)
        done["embedded"] += stop - start
    return done


def load_base(folder: Path, num_items: int, shard_size: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) embeddings of the images as stored (transform 0) and (N, 32) image hashes."""
    num_shards = -(-num_items // shard_size)
    base, hashes = [], []
    for shard in range(num_shards):
        with np.load(shard_file(folder, shard)) as data:
            base.append(data["embeddings"][:, 0])
            hashes.append(data["image_sha256"])
    return np.concatenate(base), np.concatenate(hashes)


def load_items(folder: Path, indices: np.ndarray, shard_size: int) -> np.ndarray:
    """(len(indices), T, D) embeddings of the given sorted items, reading only their shards."""
    indices = np.asarray(indices, dtype=np.int64)
    assert (np.diff(indices) > 0).all(), "sorted, distinct indices"
    out: list[np.ndarray] = []
    for shard in np.unique(indices // shard_size):
        with np.load(shard_file(folder, int(shard))) as data:
            rows = indices[indices // shard_size == shard] - shard * shard_size
            out.append(data["embeddings"][rows])
    return np.concatenate(out) if out else np.empty((0, 1, 1), np.float32)
