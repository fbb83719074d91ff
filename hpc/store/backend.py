"""The contract every store backend keeps, and the steps they share.

Zarr and HDF5 differ in where a store's files go; what makes several writers safe
without locks does not: a new store is built aside and published by one rename, a shard
is its data and then its completion record (deleted first, written last, by atomic
rename), and finalize works from the records alone. Those steps live here once; a
backend says where its files are and how to write them. Readers are per process and
check every file they need (`StoreDamaged`), so that a store that lost data never reads
as data.
"""

from __future__ import annotations

import os
import re
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hpc.store._fs import dir_size, publish_dir, temp_sibling
from hpc.store.damage import read_checks_enabled
from hpc.store.manifest import Manifest
from hpc.store.spec import StoreSpec


class NotAStore(ValueError):
    """Something is at the path, but not a store: an HDF5 file or zarr group of someone
    else's arrays, a folder of images, a file of another kind. `path` and `what` (one of
    "hdf5", "zarr", "directory", "file") let a caller that knows what such things can
    become say so (galaxy_hpc's command line suggests `ingest`)."""

    def __init__(self, message: str, *, path: Path | None = None, what: str = "") -> None:
        super().__init__(message)
        self.path, self.what = path, what


class StoreReader(ABC):
    """Reads one finalized store in one process: `Store` makes a new one after a fork,
    because file handles (and zarrs' thread pool) do not survive it."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self._path, self._manifest = path, manifest
        # Read once: HPC_STORE_READ_CHECKS=0 salvages a damaged store, per reader.
        self._checks = read_checks_enabled()

    @abstractmethod
    def read_images(self, start: int, stop: int) -> np.ndarray:
        """Images [start, stop), bounds already checked by `Store`. Each file is checked
        the first time it is needed: missing or torn data raises StoreDamaged instead of
        reading as the fill value, which is what zarr and HDF5 would return."""

    @abstractmethod
    def read_column(self, name: str, start: int, stop: int) -> np.ndarray:
        """Values [start, stop) as the backend stores them; `Store` gives strings one
        array type whatever the backend."""

    @abstractmethod
    def read_digests(self, start: int, stop: int) -> np.ndarray:
        """(stop - start, 32) uint8 item digests as the writers computed them: what
        `store verify` and the hole checks compare the data against."""

    @abstractmethod
    def check_all(self) -> None:
        """Every file the store needs, without decoding data: `store info` runs it on
        every store, so it stays a stat and an index read per file."""

    def close(self) -> None:
        """Release open files; the reader is not used afterwards."""


class StoreBackend(ABC):
    """One store on disk at `path`, in one format. Cheap to make: nothing is opened
    until a method needs it, and `Store` rebuilds one per process from (path, name)."""

    name: ClassVar[str]  # the spec's `backend` value
    # Completion records: one file per shard in `records_dir`, named RECORD_NAME; a
    # record's presence is what makes a shard complete, so finding them is a listdir.
    RECORD_NAME: ClassVar[str]  # str.format template with `shard`
    RECORD_PATTERN: ClassVar[re.Pattern[str]]  # group 1: the shard number

    def __init__(self, path: Path) -> None:
        self.path = path

    # -- where the files are ----------------------------------------------------------
    @staticmethod
    @abstractmethod
    def detect(path: Path) -> bool:
        """Whether a store of this format is at `path` (written or still being written),
        judged from the files alone: a caller may pass any path."""

    @property
    @abstractmethod
    def folder(self) -> Path:
        """The folder `create` publishes: it holds the manifest while the store is being
        written, so its appearance is the moment the store exists for other ranks."""

    @property
    @abstractmethod
    def records_dir(self) -> Path:
        """The folder of the completion records."""

    @abstractmethod
    def paths(self) -> list[Path]:
        """Everything the store is on disk: what overwriting deletes and what must move
        together."""

    @abstractmethod
    def record_name(self, shard: int) -> str:
        """The completion record of `shard` as a user finds it from where the store is
        (error messages tell them to delete it so that a job writes the shard again)."""

    def record_path(self, shard: int) -> Path:
        return self.records_dir / self.RECORD_NAME.format(shard=shard)

    def size_on_disk(self) -> int:
        return sum(
            item.stat().st_size if item.is_file() else dir_size(item) for item in self.paths()
        )

    # -- writing ----------------------------------------------------------------------
    @abstractmethod
    def read_manifest(self) -> Manifest:
        """The manifest, finalized or not; FileNotFoundError when no store is there and
        ValueError (StoreDamaged when unreadable) when something else is."""

    def create(self, manifest: Manifest) -> bool:
        """Build the new store in a hidden sibling of `folder`, then rename it into place,
        so that every rank may call this at once: one wins (True), the others find its
        store (False) and compare manifests."""
        tmp = temp_sibling(self.folder, "creating")
        try:
            self._build(tmp, manifest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return publish_dir(tmp, self.folder)

    @abstractmethod
    def _build(self, tmp: Path, manifest: Manifest) -> None:
        """Lay out a new, empty store at `tmp` (not there yet), which becomes `folder`."""

    def write_shard(
        self,
        manifest: Manifest,
        shard: int,
        images: np.ndarray,
        columns: dict[str, np.ndarray],
        digests: np.ndarray,
    ) -> None:
        """Data first, completion record last. The old record goes first, so a rewrite
        killed half-way leaves the shard pending, never complete with mixed data;
        writing a shard again is idempotent."""
        self.record_path(shard).unlink(missing_ok=True)
        self._write_data(manifest, shard, images, columns)
        self._write_record(manifest, shard, digests)

    @abstractmethod
    def _write_data(
        self, manifest: Manifest, shard: int, images: np.ndarray, columns: dict[str, np.ndarray]
    ) -> None:
        """The images and columns of `shard`, already coerced to the spec."""

    @abstractmethod
    def _write_record(self, manifest: Manifest, shard: int, digests: np.ndarray) -> None:
        """The completion record (the shard's item digests), by atomic rename: a reader
        sees no record or a whole one."""

    def completed_shards(self, manifest: Manifest) -> set[int]:
        try:
            names = os.listdir(self.records_dir)
        except FileNotFoundError:
            return set()
        found = (self.RECORD_PATTERN.match(name) for name in names)
        return {int(m.group(1)) for m in found if m and int(m.group(1)) < manifest.num_shards}

    def missing_shards(self, manifest: Manifest) -> list[int]:
        """Shards without a completion record (half-written ones included), in order."""
        done = self.completed_shards(manifest)
        return [shard for shard in range(manifest.num_shards) if shard not in done]

    @abstractmethod
    def read_digests(self, manifest: Manifest, shard: int) -> np.ndarray:
        """(items of the shard, 32) uint8 from its completion record; ValueError naming
        the record when its length does not fit the shard (finalize must not checksum a
        torn record)."""

    @abstractmethod
    def finalize(self, manifest: Manifest, digests: np.ndarray) -> None:
        """Make the store readable as finished, with `manifest` (complete, checksummed)
        and all item digests in item order. Called again on a finished store (idempotent),
        from one process."""

    # -- checking and reading -------------------------------------------------------
    @abstractmethod
    def check_present(self, manifest: Manifest) -> None:
        """At `open_store`: what can be checked for the whole store in a few stats
        (StoreDamaged); everything else is checked per file as readers first need it."""

    @abstractmethod
    def check_shards(self, manifest: Manifest, shards: list[int]) -> None:
        """The files of written shards, as a reader checks them (StoreDamaged): a resumed
        job must not finish a store around a shard that lost its data."""

    @abstractmethod
    def reader(self, manifest: Manifest) -> StoreReader:
        """A reader for this process (see StoreReader)."""

    @abstractmethod
    def read_stamp(self) -> dict[str, Any] | None:
        """The last `store verify` outcome recorded in the store, None if never."""

    @abstractmethod
    def write_stamp(self, stamp: dict[str, Any]) -> None:
        """Record a `store verify` outcome where users of the format see it."""

    def stale_link(self) -> str | None:
        """What the store's own metadata still names after the store was renamed, so that
        plain readers of the format would read the wrong files; None when nothing."""
        return None

    def relink(self, manifest: Manifest) -> bool:
        """Point that metadata at the store's files as they are named now; returns
        whether anything was rewritten. Formats without such links need nothing."""
        del manifest
        return False


class StoreView:
    """What a writer and a reader of one store both know: its backend and its manifest."""

    def __init__(self, backend: StoreBackend, manifest: Manifest) -> None:
        self._backend = backend
        self._manifest = manifest

    @property
    def path(self) -> Path:
        return self._backend.path

    @property
    def spec(self) -> StoreSpec:
        return self._manifest.spec

    @property
    def num_shards(self) -> int:
        return self._manifest.num_shards

    def shard_bounds(self, shard: int) -> tuple[int, int]:
        return self._manifest.shard_bounds(shard)
