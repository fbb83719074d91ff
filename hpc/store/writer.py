"""Creating, writing and finalizing a store from one or many processes, without locks.

The protocol (the caller supplies the barriers):
  1. rank 0 calls `create_store` (safe from every rank at once: the store is built aside and
     renamed into place; a resumed job with the same spec and N reopens it);
  2. barrier; other ranks call `open_store_for_writing`;
  3. each rank writes whole shards it owns (`pending_shards()` tells what is left);
  4. barrier; one rank calls `finalize_store`, which checks every shard has its completion
     record and computes the content checksum from the records.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hpc.store._fs import remove_path
from hpc.store.backend import NotAStore, StoreBackend, StoreView
from hpc.store.checksum import DIGEST_SIZE, item_digests, store_checksum
from hpc.store.damage import StoreDamaged, damaged, read_checks_enabled
from hpc.store.hdf5_backend import Hdf5Backend
from hpc.store.items import coerce_items
from hpc.store.jpeg import coerce_jpeg_items
from hpc.store.manifest import Manifest
from hpc.store.spec import StoreSpec, backend_for_path
from hpc.store.zarr_backend import ZarrBackend

BACKEND_TYPES: dict[str, type[StoreBackend]] = {
    backend.name: backend for backend in (ZarrBackend, Hdf5Backend)  # detected in this order
}


def backend_for(path: Path, name: str) -> StoreBackend:
    return BACKEND_TYPES[name](path)


def detect_backend(path: str | os.PathLike) -> StoreBackend:
    """The backend of the store at `path`; FileNotFoundError/ValueError naming the path."""
    path = Path(path)
    for backend in BACKEND_TYPES.values():
        if backend.detect(path):
            return backend(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such store (nothing at this path)")
    what = "directory" if path.is_dir() else "file"
    raise NotAStore(f"{path}: not a store (a {what} that is neither a zarr group nor an HDF5 "
                    "file)", path=path, what=what)


def format_shards(shards: list[int], limit: int = 12) -> str:
    """'0-3, 7, 9' style, truncated: error messages must stay one readable line."""
    runs: list[str] = []
    shards = sorted(shards)
    index = 0
    while index < len(shards):
        end = index
        while end + 1 < len(shards) and shards[end + 1] == shards[end] + 1:
            end += 1
        runs.append(str(shards[index]) if end == index else f"{shards[index]}-{shards[end]}")
        index = end + 1
    text = ", ".join(runs[:limit])
    return text + (f", ... ({len(runs) - limit} more runs)" if len(runs) > limit else "")


class StoreWriter(StoreView):
    """Writes whole shards of one store. Cheap to make; one per process."""

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def num_items(self) -> int:
        return self._manifest.num_items

    def completed_shards(self) -> list[int]:
        return sorted(self._backend.completed_shards(self.manifest))

    def pending_shards(self) -> list[int]:
        """Shards without a completion record, including half-written ones."""
        return self._backend.missing_shards(self._manifest)

    def write_shard(
        self, shard: int, images: Any, columns: Mapping[str, Any] | None = None
    ) -> None:
        """Write all items of `shard` (data first, then its completion record). Rewriting a
        shard is allowed; different processes may write different shards at once. For a
        jpeg-source spec `images` are the items' JPEG files (bytes), not pixels."""
        if self.manifest.complete:
            raise ValueError(
                f"{self.path} is finalized; create it again with overwrite=True to rewrite it"
            )
        start, stop = self.manifest.shard_bounds(shard)
        where = f"shard {shard} (items {start}..{stop - 1})"
        if self.spec.keeps_jpeg:  # images are JPEG files; digests over PIL's pixels
            images, pixels, columns = coerce_jpeg_items(
                self.spec, images, columns, expected_count=stop - start, where=where
            )
        else:
            images, columns = coerce_items(
                self.spec, images, columns, expected_count=stop - start, where=where
            )
            pixels = images
        digests = item_digests(self.spec, pixels, columns)
        self._backend.write_shard(self.manifest, shard, images, columns, digests)


def create_store(
    path: str | os.PathLike,
    spec: StoreSpec,
    *,
    num_items: int,
    attrs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> StoreWriter:
    """Create the store, or reopen it if it exists with the same spec and item count (a
    resumed job keeps its completed shards). `overwrite=True` deletes it first (one rank
    only). Safe to call from several ranks at once when overwrite is False."""
    if not isinstance(spec, StoreSpec):
        raise ValueError(f"spec must be a StoreSpec, got {type(spec).__name__}")
    path = Path(path)
    manifest = Manifest.new(spec, num_items, attrs)
    path.parent.mkdir(parents=True, exist_ok=True)
    if overwrite:
        _remove_existing(path)
    existing = _existing_backend(path)
    if existing is None:
        backend_for_path(path, spec.backend)  # a new x.h5 holds HDF5, a new x.zarr Zarr
        backend = backend_for(path, spec.backend)
        if backend.create(manifest):
            return StoreWriter(backend, manifest)
        existing = backend  # another rank created it first: check it is the same store
    elif existing.name != spec.backend:
        raise ValueError(
            f"{path} is a {existing.name} store but the spec asks for backend {spec.backend!r}; "
            "use the same backend or pass overwrite=True to start over"
        )
    return _reopen(existing, spec, manifest.num_items)


def _existing_backend(path: Path) -> StoreBackend | None:
    """The store at `path`, None if there is none yet (an empty folder counts as none)."""
    if path.is_dir() and not any(path.iterdir()):
        return None
    try:
        return detect_backend(path)
    except FileNotFoundError:
        return None
    except ValueError:
        raise ValueError(f"{path} exists and is not a store; choose another path") from None


def _reopen(backend: StoreBackend, spec: StoreSpec, num_items: int) -> StoreWriter:
    stored = backend.read_manifest()
    diffs = stored.spec.differences(spec)
    if stored.num_items != num_items:
        diffs.append(f"num_items: {stored.num_items} != {num_items}")
    if diffs:
        raise ValueError(
            f"{backend.path} exists with a different spec (stored != requested): "
            f"{'; '.join(diffs)}. "
            "Resume with the same spec and num_items, or pass overwrite=True to start over"
        )
    check_written_shards(backend, stored)
    return StoreWriter(backend, stored)


def check_written_shards(backend: StoreBackend, manifest: Manifest) -> None:
    """A resumed job keeps the shards marked written; their files must still be there and
    whole (a stat and a chunk index each), or the job would finish a store with a hole."""
    if not read_checks_enabled():
        return
    done = sorted(backend.completed_shards(manifest))
    try:
        backend.check_shards(manifest, done)
    except StoreDamaged as error:
        shard = (error.items[0] // manifest.spec.shard_size) if error.items else None
        redo = (
            "restore the file or start over (--overwrite)" if manifest.complete or shard is None
            else f"restore the file, or delete {backend.record_name(shard)} so that the job "
            "writes the shard again, or start over (--overwrite)"
        )
        raise damaged(backend.path, error.file or "", error.items, error.reason, redo) from None


def _remove_existing(path: Path) -> None:
    """Delete a store; refuse anything that is not one, so a wrong path never costs data."""
    try:
        backend = detect_backend(path)
        backend.read_manifest()  # raises if this is not one of our stores
    except FileNotFoundError:
        return
    except ValueError as error:
        raise ValueError(f"refusing to overwrite: {error}") from None
    for item in backend.paths():
        remove_path(item)


def open_store_for_writing(path: str | os.PathLike) -> StoreWriter:
    """A writer for a store another rank created (after a barrier)."""
    backend = detect_backend(path)
    return StoreWriter(backend, backend.read_manifest())


def finalize_store(path: str | os.PathLike, attrs: Mapping[str, Any] | None = None) -> str:
    """Check that every shard is complete, compute the checksum, mark the store complete
    and merge `attrs` into its attributes. Idempotent; returns 'sha256:<hex>'."""
    backend = detect_backend(path)
    manifest = backend.read_manifest()
    missing = backend.missing_shards(manifest)
    if missing:
        raise ValueError(
            f"cannot finalize {backend.path}: {len(missing)} of {manifest.num_shards} shards "
            f"have no completion record (shards {format_shards(missing)}); write them first"
        )
    parts = [backend.read_digests(manifest, shard) for shard in range(manifest.num_shards)]
    digests = np.concatenate(parts) if parts else np.empty((0, DIGEST_SIZE), dtype=np.uint8)
    assert digests.shape == (manifest.num_items, DIGEST_SIZE), digests.shape
    checksum = store_checksum(manifest.spec, digests)
    final = manifest.finalized(checksum, attrs)
    if manifest.complete:  # keep the first finalization time on a re-run
        final = replace(final, finalized_at=manifest.finalized_at)
    backend.finalize(final, digests)
    return checksum
