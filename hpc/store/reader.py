"""Reading a finalized store, from any process.

A `Store` is picklable and cheap to send: pickling carries only the path and the manifest,
and each process (DataLoader worker, MPI rank) opens its own file handles on its first
read, re-opening them after a fork. Calling `open_store` in every worker is equally fine:
it reads one small metadata file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hpc.store.backend import StoreBackend, StoreReader, StoreView
from hpc.store.damage import StoreDamaged
from hpc.store.manifest import Manifest
from hpc.store.spec import StoreSpec
from hpc.store.writer import backend_for, detect_backend, format_shards

_STRING_DTYPE = getattr(np.dtypes, "StringDType", None)


def as_strings(values: Any) -> np.ndarray:
    """One string array type from both backends: numpy's StringDType (object on numpy 1)."""
    return np.asarray(values, dtype=_STRING_DTYPE() if _STRING_DTYPE else object)


class Store(StoreView):
    """A finalized store: images (N, C, H, W), columns, attrs, checksum.

    One Store per thread: handles are per process and not locked. Open one per
    DataLoader worker or rank, or pickle one to them (see the module docstring)."""

    def __init__(self, backend: StoreBackend, manifest: Manifest) -> None:
        assert manifest.complete
        super().__init__(backend, manifest)
        self._reader: StoreReader | None = None
        self._reader_pid: int | None = None

    # -- pickling: path and manifest only; handles are per process -----------------------
    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": os.path.abspath(self._backend.path),  # workers may run in another cwd
            "backend": self._backend.name,
            "manifest": self._manifest.to_dict(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(
            backend_for(Path(state["path"]), state["backend"]),
            Manifest.from_dict(state["manifest"]),
        )

    def _handles(self) -> StoreReader:
        if self._reader is None or self._reader_pid != os.getpid():
            # After fork the parent's handles are not ours to use (or close).
            self._reader = self._backend.reader(self._manifest)
            self._reader_pid = os.getpid()
        return self._reader

    def close(self) -> None:
        if self._reader is not None and self._reader_pid == os.getpid():
            self._reader.close()
        self._reader = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- description ------------------------------------------------------------------
    def __len__(self) -> int:
        return self._manifest.num_items

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, backend={self.backend!r}, count={len(self)})"

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._manifest.attrs)

    @property
    def checksum(self) -> str:
        assert self._manifest.checksum is not None
        return self._manifest.checksum

    @property
    def finalized_at(self) -> str | None:
        return self._manifest.finalized_at

    @property
    def store_id(self) -> str | None:
        return self._manifest.store_id

    @property
    def columns(self) -> list[str]:
        return list(self.spec.columns)

    def column_info(self, name: str) -> dict[str, str]:
        """{"unit": ..., "description": ...} of a column, as its writer gave them (either
        key absent when unknown; unit "" is dimensionless)."""
        if name not in self.spec.columns:
            raise ValueError(
                f"no column {name!r} in {self.path}; columns: {', '.join(self.columns) or '(none)'}"
            )
        return dict(self.spec.column_info.get(name, {}))

    def info(self) -> dict[str, Any]:
        from hpc.store.verify import verification_state

        spec, manifest = self.spec, self._manifest
        return {
            "path": str(self.path),
            "backend": self.backend,
            "count": len(self),
            "image_shape": list(spec.image_shape),
            "image_dtype": spec.image_dtype,
            "columns": dict(spec.columns),
            "column_info": {name: dict(info) for name, info in spec.column_info.items()},
            "shard_size": spec.shard_size,
            "num_shards": self.num_shards,
            "compression": spec.compression,
            "compression_level": spec.compression_level,
            "checksum": self.checksum,
            "size_on_disk_bytes": self._backend.size_on_disk(),
            "created_at": manifest.created_at,
            "finalized_at": manifest.finalized_at,
            "attrs": self.attrs,
            "verification": verification_state(self),
        }

    # -- reading ----------------------------------------------------------------------
    def read_images(self, start: int = 0, stop: int | None = None, *,
                    device: str = "cpu") -> np.ndarray:
        """Images [start, stop) as one array; shard-sized slices read fastest. `device`
        matters only to jpeg-source stores: where decode_jpeg runs ("cuda": nvJPEG; the
        pixels come back to the CPU either way)."""
        stop = len(self) if stop is None else stop
        if not 0 <= start <= stop <= len(self):
            raise ValueError(
                f"read_images({start}, {stop}): need 0 <= start <= stop <= {len(self)}"
            )
        if self.spec.keeps_jpeg:
            return self._handles().read_images(int(start), int(stop), device=device)
        return self._handles().read_images(int(start), int(stop))

    def read_jpeg(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The source JPEG files [start, stop) of a jpeg-source store, as an object array
        of bytes (checked as images are); ValueError for other stores."""
        if not self.spec.keeps_jpeg:
            raise ValueError(f"{self.path} stores pixels (compression "
                             f"{self.spec.compression!r}), not JPEG files; use read_images")
        start, stop = self._bounds(start, stop, "read_jpeg")
        return self._handles().read_jpeg(start, stop)

    def read_images_at(self, indices: Any) -> np.ndarray:
        """Images at arbitrary indices, in the order given (repeats allowed). Contiguous
        runs are read as slices, so a sorted batch costs about as much as a slice."""
        indices = np.asarray(indices)
        if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
            raise ValueError(
                "indices must be a 1-D array of integers, "
                f"got shape {indices.shape} dtype {indices.dtype}"
            )
        if indices.size == 0:
            return np.empty((0, *self.spec.image_shape), dtype=self.spec.image_dtype)
        if indices.min() < 0 or indices.max() >= len(self):
            raise ValueError(
                f"indices must lie in [0, {len(self)}), got {indices.min()}..{indices.max()}"
            )
        unique, inverse = np.unique(indices, return_inverse=True)
        runs = np.split(unique, np.flatnonzero(np.diff(unique) != 1) + 1)
        reader = self._handles()
        parts = [reader.read_images(int(run[0]), int(run[-1]) + 1) for run in runs]
        return np.concatenate(parts)[inverse.reshape(-1)]

    def read_for(self, target: StoreSpec, indices: Any) -> Any:
        """Images at `indices` as a writer of a store with spec `target` takes them: the
        JPEG files when both stores keep them (copied, never re-encoded), else pixels.
        For tools that copy a store's items into a new one (caption, dedup)."""
        if not (self.spec.keeps_jpeg and target.keeps_jpeg):
            return self.read_images_at(indices)
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty(len(indices), dtype=object)
        if len(indices):
            unique, inverse = np.unique(indices, return_inverse=True)
            runs = np.split(unique, np.flatnonzero(np.diff(unique) != 1) + 1)
            blobs = np.concatenate([self.read_jpeg(int(r[0]), int(r[-1]) + 1) for r in runs])
            out[:] = list(blobs[inverse.reshape(-1)])
        return out

    def read_column(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Values [start, stop) of a column, the whole column by default (strings as
        StringDType)."""
        if name not in self.spec.columns:
            raise ValueError(
                f"no column {name!r} in {self.path}; columns: {', '.join(self.columns) or '(none)'}"
            )
        start, stop = self._bounds(start, stop, "read_column")
        values = self._handles().read_column(name, start, stop)
        if self.spec.columns[name] == "str":
            return as_strings(values)
        return np.asarray(values, dtype=self.spec.columns[name])

    def read_item_digests(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """(stop - start, 32) uint8: the sha256 of each item, as the writers computed it."""
        start, stop = self._bounds(start, stop, "read_item_digests")
        return self._handles().read_digests(start, stop)

    def _bounds(self, start: int, stop: int | None, what: str) -> tuple[int, int]:
        stop = len(self) if stop is None else stop
        if not 0 <= start <= stop <= len(self):
            raise ValueError(f"{what}({start}, {stop}): need 0 <= start <= stop <= {len(self)}")
        return int(start), int(stop)

    # -- integrity --------------------------------------------------------------------
    def check_files(self) -> None:
        """Every file the store needs is there, whole and this store's, without decoding
        data (a stat and a chunk index per shard): StoreDamaged naming the first that is
        not. A changed byte inside a chunk is found by reading it (`verify`)."""
        self._handles().check_all()

    def verify(self) -> None:
        """Re-hash every item from the data on disk and compare with the stored digests and
        checksum; StoreDamaged (a ValueError) naming the first damage. Reads everything."""
        from hpc.store.verify import first_damage

        found = first_damage(self)
        if found is not None:
            raise found

    def read_verification(self) -> dict[str, Any] | None:
        """The last `store verify` outcome recorded in the store, if any."""
        return self._backend.read_stamp()

    def write_verification(self, stamp: dict[str, Any]) -> None:
        self._backend.write_stamp(stamp)

    def relink(self) -> bool:
        """HDF5: point a renamed master's virtual dataset at its own shard folder (plain
        h5py reads it); True if it was rewritten. Zarr stores need nothing."""
        return self._backend.relink(self._manifest)

    def stale_links(self) -> str | None:
        """HDF5: the folder a renamed master's virtual dataset still names, else None."""
        return self._backend.stale_link()


def open_store(path: str | os.PathLike, *, check_present: bool = True) -> Store:
    """Open a finalized store (backend detected from what is on disk). A store that is not
    finalized raises ValueError saying which shards; one that lost files it can tell
    without reading (HDF5 shard files) raises StoreDamaged. Everything else is checked
    as it is first read. `check_present=False` leaves missing files to be found per shard
    (`store verify` lists them all instead of stopping at the first)."""
    backend = detect_backend(path)
    manifest = backend.read_manifest()
    if not manifest.complete:
        missing = backend.missing_shards(manifest)
        if missing:
            raise ValueError(
                f"{backend.path}: store is not finalized; {len(missing)} of "
                f"{manifest.num_shards} shards are not written (shards {format_shards(missing)})"
            )
        raise ValueError(
            f"{backend.path}: store is not finalized; all shards are written, run finalize_store"
        )
    if check_present:
        backend.check_present(manifest)
    return Store(backend, manifest)


__all__ = ["Store", "StoreDamaged", "as_strings", "open_store"]
