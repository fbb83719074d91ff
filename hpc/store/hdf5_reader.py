"""Reading an HDF5 store: images straight from the shard files, each checked when opened.

Why not through the master's virtual dataset: HDF5 keeps every VDS source open once
touched and reads a source it cannot open (deleted, moved, past `ulimit -n`) as fill
values without an error (hdf5_backend.py). Reading the shard files ourselves, at most
MAX_OPEN at a time, lets each be checked the first time a process opens it:

- missing or empty, or not openable as HDF5 (HDF5 refuses a file shorter than its
  superblock says: "truncated file");
- another store's (its `hpc_store_id` is not this manifest's store_id: a copied or
  half-replaced shard folder);
- `images` of the wrong shape;

and every image read is checked against the crc32c its writer stored beside it
(`images_crc32c`, in stores written since), and a read that fails (a torn or
undecodable chunk) is narrowed to the items that fail. Each raises `StoreDamaged`
naming the store, the shard file and its items. Columns and digests come from the
master (numeric ones with HDF5's fletcher32).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np

from hpc.store.backend import StoreReader
from hpc.store.damage import damaged, short_error
from hpc.store.hdf5_backend import CRC_DATASET, DIGESTS, STORE_ID_KEY, image_crcs, shard_file
from hpc.store.manifest import Manifest


def open_checked_shard(path: Path, shard_dir: Path, manifest: Manifest, shard: int) -> h5py.File:
    """A shard file, open, after the checks of the module docstring (StoreDamaged)."""
    file = shard_dir / shard_file(shard)
    start, stop = manifest.shard_bounds(shard)
    where = (path, f"{shard_dir.name}/{shard_file(shard)}", (start, stop))
    try:
        size = file.stat().st_size
    except FileNotFoundError:
        raise damaged(*where, "is missing") from None
    if size == 0:
        raise damaged(*where, "is empty (0 bytes)")
    try:
        handle = h5py.File(file, "r", locking=False)
    except OSError as error:
        raise damaged(
            *where, f"cannot be opened as HDF5, truncated or overwritten "
            f"({size} bytes; {short_error(error)})"
        ) from None
    try:
        expected = manifest.store_id
        found = handle.attrs.get(STORE_ID_KEY)
        if expected is not None and found != expected:
            raise damaged(
                *where, f"belongs to another store (store id {found or 'none'}, this "
                f"store's is {expected}): shard folders of two stores were mixed",
            )
        images = handle.get("images")
        shape = (stop - start, *manifest.spec.image_shape)
        if not isinstance(images, h5py.Dataset) or images.shape != shape:
            got = "no images" if not isinstance(images, h5py.Dataset) else images.shape
            raise damaged(*where, f"holds {got}, expected images of shape {shape}")
    except BaseException:
        handle.close()
        raise
    return handle


class Hdf5Reader(StoreReader):
    MAX_OPEN = 16

    def __init__(self, path: Path, shard_dir: Path, manifest: Manifest) -> None:
        super().__init__(path, manifest)
        try:
            self._master = h5py.File(path, "r", locking=False)
        except OSError as error:
            raise damaged(
                path, path.name, None, f"(the master file) cannot be read ({short_error(error)})"
            ) from None
        self._shard_dir = shard_dir
        self._open: OrderedDict[int, h5py.File] = OrderedDict()
        self._crcs: dict[int, np.ndarray | None] = {}  # per shard, loaded when first opened

    def _rel(self, shard: int) -> str:
        return f"{self._shard_dir.name}/{shard_file(shard)}"

    def _images_of(self, shard: int) -> h5py.Dataset:
        handle = self._open.pop(shard, None)
        if handle is None:
            handle = self._open_shard(shard)
            if len(self._open) >= self.MAX_OPEN:
                _, oldest = self._open.popitem(last=False)
                oldest.close()
            if self._checks and shard not in self._crcs:
                self._crcs[shard] = self._stored_crcs(shard, handle)
        self._open[shard] = handle
        return handle["images"]

    def _open_shard(self, shard: int) -> h5py.File:
        if not self._checks:
            return h5py.File(self._shard_dir / shard_file(shard), "r", locking=False)
        return open_checked_shard(self._path, self._shard_dir, self._manifest, shard)

    def _stored_crcs(self, shard: int, handle: h5py.File) -> np.ndarray | None:
        crcs = handle.get(CRC_DATASET)
        if crcs is None:
            return None  # written before image checksums
        start, stop = self._manifest.shard_bounds(shard)
        if not isinstance(crcs, h5py.Dataset) or crcs.shape != (stop - start,):
            raise damaged(self._path, self._rel(shard), (start, stop),
                          f"has a damaged {CRC_DATASET} dataset")
        return crcs[:]

    def read_images(self, start: int, stop: int) -> np.ndarray:
        spec = self._manifest.spec
        out = np.empty((stop - start, *spec.image_shape), dtype=spec.image_dtype)
        size = spec.shard_size
        position = start
        while position < stop:
            shard = position // size
            end = min(stop, (shard + 1) * size)
            self._read_part(shard, out, position, end, start)
            position = end
        return out

    def _read_part(self, shard: int, out: np.ndarray, a: int, b: int, start: int) -> None:
        base = shard * self._manifest.spec.shard_size
        images = self._images_of(shard)
        try:
            images.read_direct(out, source_sel=np.s_[a - base : b - base],
                               dest_sel=np.s_[a - start : b - start])
        except (OSError, ValueError) as error:
            if not self._checks:
                raise
            self._fail_part(shard, images, a, b, error)
        crcs = self._crcs.get(shard) if self._checks else None
        if crcs is not None:
            found = image_crcs(out[a - start : b - start])
            bad = np.flatnonzero(found != crcs[a - base : b - base])
            if bad.size:
                item = a + int(bad[0])
                raise damaged(self._path, self._rel(shard), (item, item + 1),
                              "fails its crc32c check (a byte of the image changed)")

    def _fail_part(self, shard: int, images: h5py.Dataset, a: int, b: int,
                   error: Exception) -> None:
        """A read of items [a, b) raised: name the items that do not read."""
        base = shard * self._manifest.spec.shard_size
        bad = []
        for item in range(a, b):
            try:
                images[item - base]
            except (OSError, ValueError):
                bad.append(item)
        items = (bad[0], bad[-1] + 1) if bad else (a, b)
        raise damaged(self._path, self._rel(shard), items,
                      f"cannot be read ({short_error(error)})") from None

    def read_column(self, name: str, start: int, stop: int) -> np.ndarray:
        try:
            dataset = self._master["columns"][name]
            if self._manifest.spec.columns[name] == "str":
                return dataset.asstr()[start:stop]
            return dataset[start:stop]
        except (OSError, KeyError) as error:
            raise damaged(self._path, self._path.name, None,
                          f"column {name!r} cannot be read ({short_error(error)})") from None

    def read_digests(self, start: int, stop: int) -> np.ndarray:
        try:
            return self._master[DIGESTS][start:stop]
        except (OSError, KeyError) as error:
            raise damaged(self._path, self._path.name, None,
                          f"item digests cannot be read ({short_error(error)})") from None

    def check_all(self) -> None:
        """Open (and check) every shard file once, and the master's columns and digests,
        without reading images (what `store info` runs)."""
        for shard in range(self._manifest.num_shards):
            self._images_of(shard)
        num_items = self._manifest.num_items
        for name in self._manifest.spec.columns:
            self.read_column(name, 0, num_items)
        self.read_digests(0, num_items)

    def close(self) -> None:
        for handle in self._open.values():
            handle.close()
        self._open.clear()
        self._master.close()
