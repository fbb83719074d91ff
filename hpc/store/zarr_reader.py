"""Reading a Zarr store, checking every file the first time a read needs it.

zarr reads a chunk it cannot find as the array's fill value, and so do zarrs and zarr's
own pipeline: a deleted or emptied shard file reads as black images, a deleted column
chunk as 0.0, without an error. The store knows which files must exist (N and the shard
size), so each process checks, once per shard and per column (a stat, and for an image
shard its chunk index: 16 bytes per image and a crc32c, read from the end of the file):

- a shard or column chunk that is missing, empty, or shorter than its index says, or an
  index whose crc32c fails, is damage;
- a hole (a chunk zarr did not write because it held only the fill value: zarrs never
  writes one, whatever `write_empty_chunks` says) is damage unless the item digests
  the writer computed say the fill value is what was written (an all-black image);
- a chunk that does not decode (crc32c of new stores, zstd, lengths) is damage, found
  by re-reading the failed range shard by shard and item by item.

Each raises `StoreDamaged` naming the store, the file and its items. A flipped byte in a
store without chunk checksums (written before they existed) decodes without error; only
`store verify` (item digests) finds it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import google_crc32c
import numpy as np
import zarr

from hpc.store.checksum import DIGEST_SIZE, item_digests
from hpc.store.backend import StoreReader
from hpc.store.damage import damaged, describe_items, short_error
from hpc.store.items import coerce_items
from hpc.store.manifest import Manifest
from hpc.store.jpeg import JpegDecodeError, decode_jpegs
from hpc.store.zarr_backend import DIGESTS, JPEG_ARRAY, ImagesArray, JpegArray

_EMPTY = np.uint64(2**64 - 1)  # a shard index entry of a chunk that was not written


def chunk_key(meta: dict[str, Any], coords: tuple[int, ...]) -> str:
    """A chunk's file name inside its array folder, from the array's zarr.json."""
    encoding = meta.get("chunk_key_encoding", {})
    separator = encoding.get("configuration", {}).get("separator")
    if encoding.get("name") == "v2":
        return (separator or ".").join(map(str, coords)) or "0"
    return (separator or "/").join(["c", *map(str, coords)])


class ShardIndex:
    """Where the sharding codec of `images` keeps its chunk index, or None when the array
    is not laid out as this package writes it (then only existence and size are checked)."""

    def __init__(self, meta: dict[str, Any], chunks_per_shard: int) -> None:
        self.meta = meta
        self.chunks_per_shard = chunks_per_shard
        codecs = meta.get("codecs", [])
        config = codecs[0].get("configuration", {}) if codecs else {}
        names = [codec.get("name") for codec in config.get("index_codecs", [])]
        self.usable = (
            len(codecs) == 1
            and codecs[0].get("name") == "sharding_indexed"
            and names in (["bytes"], ["bytes", "crc32c"])
            and config.get("index_codecs", [{}])[0].get("configuration", {}).get("endian", "little")
            == "little"
        )
        self.crc = names[-1:] == ["crc32c"]
        inner = [codec.get("name") for codec in config.get("codecs", [])]
        self.inner_crc = self.usable and inner[-1:] == ["crc32c"]
        # jpeg-source files: read by ZarrReader itself, not through zarr (_jpeg_direct)
        self.direct_vlen = self.usable and inner == ["vlen-bytes", "crc32c"]
        self.at_end = config.get("index_location", "end") == "end"
        self.nbytes = 16 * chunks_per_shard + (4 if self.crc else 0)


class ZarrReader(StoreReader):
    """Images through zarrs (ImagesArray), columns and digests through zarr, all checked."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        super().__init__(path, manifest)
        self._images: ImagesArray | JpegArray | None = None
        self._jpeg = manifest.spec.keeps_jpeg  # images are source JPEG files (jpeg.py)
        self._index: ShardIndex | None = None
        self._good_shards: set[int] = set()
        self._good_columns: set[tuple[str, int]] = set()
        self._meta: dict[str, dict[str, Any]] = {}
        self._entries: dict[int, np.ndarray] = {}  # checked shard indexes: (offset, nbytes)

    # -- reading ---------------------------------------------------------------------
    def _images_array(self) -> ImagesArray | JpegArray:
        if self._images is None:
            # Opened on the first image read, not before: merely building a zarrs pipeline
            # already spoils fork() for children, and a parent often reads only columns.
            kind = JpegArray if self._jpeg else ImagesArray
            self._images = kind(self._path, "r")
        return self._images

    def read_jpeg(self, start: int, stop: int) -> np.ndarray:
        """The stored JPEG files [start, stop) (object array of bytes), files checked."""
        if not self._checks:
            return self._images_array().read(start, stop)
        for shard in self._shards_of(start, stop):
            if shard not in self._good_shards:
                self.check_image_shard(shard)
        if self._shard_index().direct_vlen:
            shards = self._shards_of(start, stop)
            parts = [self._jpeg_direct(shard, start, stop) for shard in shards]
            return np.concatenate(parts) if parts else np.empty(0, dtype=object)
        return self._decoded(self._images_array().read, start, stop, self._image_file)

    def _jpeg_direct(self, shard: int, start: int, stop: int) -> np.ndarray:
        """The files of one shard in [start, stop), read straight from the shard file with
        the index check_image_shard already holds: one read, and each chunk's crc32c and
        vlen-bytes header checked here. zarr's own pipeline does the same per chunk at
        ~2x the cost of the JPEG decode itself (measured: hpc/store/README.md)."""
        base = self._manifest.shard_bounds(shard)[0]
        a, b = max(start, base), min(stop, self._manifest.shard_bounds(shard)[1])
        picked = self._entries[shard][a - base : b - base]
        rel = self._image_file(shard)
        low = int(picked[:, 0].min())
        high = int((picked[:, 0] + picked[:, 1]).max())
        with open(self._path / rel, "rb") as handle:
            handle.seek(low)
            blob = handle.read(high - low)
        out = np.empty(b - a, dtype=object)
        for k, (offset, nbytes) in enumerate(picked.tolist()):
            chunk = blob[offset - low : offset - low + nbytes]
            body = chunk[:-4]
            length = int.from_bytes(body[4:8], "little") if nbytes >= 12 else -1
            if (nbytes < 12 or google_crc32c.value(body) != int.from_bytes(chunk[-4:], "little")
                    or int.from_bytes(body[:4], "little") != 1 or length != nbytes - 12):
                raise damaged(self._path, rel, (a + k, a + k + 1),
                              "fails its crc32c check (a byte of the JPEG file changed)")
            out[k] = body[8:]
        return out

    def _read_jpeg_images(self, start: int, stop: int, device: str) -> np.ndarray:
        """Pixels of the files [start, stop): one decode_jpeg call for the whole slice. A
        file that does not decode is damage (a store written without chunk checksums)."""
        blobs = self.read_jpeg(start, stop)
        try:
            return decode_jpegs(list(blobs), self._manifest.spec.image_shape, device)
        except JpegDecodeError as error:
            first = start + error.bad_items[0]
            raise damaged(self._path, self._image_file(first // self._manifest.spec.shard_size),
                          (first, start + error.bad_items[-1] + 1),
                          f"holds a JPEG file that {error.reason}") from None

    def read_images(self, start: int, stop: int, device: str = "cpu") -> np.ndarray:
        if self._jpeg:
            return self._read_jpeg_images(start, stop, device)
        if not self._checks:
            return self._images_array().read(start, stop)
        for shard in self._shards_of(start, stop):
            if shard not in self._good_shards:
                self.check_image_shard(shard)
        array = self._images_array()
        images = self._decoded(array.read, start, stop, self._image_file, self._check_chunk_crcs)
        if array.uses_zarrs:
            for shard in self._shards_of(start, stop):
                a, b = self._manifest.shard_bounds(shard)
                if (max(a, start), min(b, stop)) != (a, b):
                    self._check_chunk_crcs(shard, max(a, start), min(b, stop))
        return images

    def _check_chunk_crcs(self, shard: int, start: int, stop: int) -> None:
        """zarrs checks the crc32c of a chunk when it decodes a whole shard, but not when it
        reads part of one (its partial decoder strips the checksum unread: measured, a
        flipped byte read back as data). So for a partial read, the chunks read are
        checked here, from the shard index read by check_image_shard."""
        index, entries = self._shard_index(), self._entries.get(shard)
        if entries is None or not index.inner_crc:
            return
        base = self._manifest.shard_bounds(shard)[0]
        picked = entries[start - base : stop - base]
        written = np.flatnonzero(~(picked == _EMPTY).all(axis=1))
        if not written.size:
            return
        low = int(picked[written, 0].min())
        high = int((picked[written, 0] + picked[written, 1]).max())
        rel = self._image_file(shard)
        with open(self._path / rel, "rb") as handle:
            handle.seek(low)
            blob = handle.read(high - low)
        for k in written:
            offset, nbytes = int(picked[k, 0]) - low, int(picked[k, 1])
            chunk = blob[offset : offset + nbytes]
            stored = int.from_bytes(chunk[-4:], "little")
            if nbytes < 4 or google_crc32c.value(chunk[:-4]) != stored:
                item = start + int(k)
                raise damaged(self._path, rel, (item, item + 1),
                              "fails its crc32c check (a byte of the image changed)")

    def read_column(self, name: str, start: int, stop: int) -> np.ndarray:
        array = zarr.open_array(self._path / "columns" / name, mode="r")
        if not self._checks:
            return array[start:stop]
        for shard in self._shards_of(start, stop):
            if (name, shard) not in self._good_columns:
                self.check_column_chunk(name, shard)
        return self._decoded(
            lambda a, b: array[a:b], start, stop, lambda j: self._column_file(name, j)
        )

    def read_digests(self, start: int, stop: int) -> np.ndarray:
        if self._checks:
            for shard in self._shards_of(start, stop):
                self.check_digests(shard)
        return zarr.open_array(self._path / DIGESTS, mode="r")[start:stop]

    def _decoded(
        self, read: Callable[[int, int], np.ndarray], start: int, stop: int,
        file_of: Callable[[int], str], narrow: Callable[[int, int, int], None] | None = None,
    ) -> np.ndarray:
        """read(start, stop); if it raises, find the shard and items that do not decode and
        name them (an error that no smaller read reproduces is not damage: re-raised)."""
        try:
            return read(start, stop)
        except Exception as error:  # noqa: BLE001 - zarr, zarrs, numcodecs raise many kinds
            for shard in self._shards_of(start, stop):
                a, b = self._manifest.shard_bounds(shard)
                a, b = max(a, start), min(b, stop)
                try:
                    read(a, b)
                    continue
                except Exception as shard_error:  # noqa: BLE001
                    cause = shard_error
                if narrow is not None:
                    narrow(shard, a, b)  # names the item whose chunk fails its checksum
                bad = []
                for item in range(a, b):
                    try:
                        read(item, item + 1)
                    except Exception:  # noqa: BLE001
                        bad.append(item)
                items = (bad[0], bad[-1] + 1) if bad else (a, b)
                raise damaged(
                    self._path, file_of(shard), items,
                    f"cannot be decoded ({short_error(cause)})",
                ) from None
            raise error

    # -- checks ----------------------------------------------------------------------
    def check_all(self) -> None:
        """Every file of the store, without decoding chunks (what `store info` runs)."""
        for shard in range(self._manifest.num_shards):
            self.check_image_shard(shard)
            for name in self._manifest.spec.columns:
                self.check_column_chunk(name, shard)
            self.check_digests(shard)

    def check_image_shard(self, shard: int) -> None:
        start, stop = self._manifest.shard_bounds(shard)
        rel = self._image_file(shard)
        size = self._chunk_file_size(shard, rel)
        index = self._shard_index()
        if size is not None and index is not None and index.usable:
            holes = self._check_index(index, rel, size, start, stop)
            if holes.size:
                self._explain_holes(shard, holes, rel, "has no chunk for")
        self._good_shards.add(shard)

    def _check_index(
        self, index: ShardIndex, rel: str, size: int, start: int, stop: int
    ) -> np.ndarray:
        """Positions (within the shard) of items without a chunk; raises on a torn index."""
        items = (start, stop)
        if size < index.nbytes:
            raise damaged(
                self._path, rel, items,
                f"is truncated ({size} bytes, shorter than its {index.nbytes}-byte chunk index)",
            )
        with open(self._path / rel, "rb") as handle:
            handle.seek(size - index.nbytes if index.at_end else 0)
            raw = handle.read(index.nbytes)
        body = raw[:-4] if index.crc else raw
        if index.crc and google_crc32c.value(body) != int.from_bytes(raw[-4:], "little"):
            raise damaged(
                self._path, rel, items,
                f"is truncated or overwritten ({size} bytes; its chunk index fails its crc32c)",
            )
        entries = np.frombuffer(body, dtype="<u8").reshape(-1, 2)[: stop - start]
        self._entries[start // self._manifest.spec.shard_size] = entries
        empty = (entries == _EMPTY).all(axis=1)
        low, high = (0, size - index.nbytes) if index.at_end else (index.nbytes, size)
        ends = entries[:, 0] + entries[:, 1]
        torn = np.flatnonzero(~empty & ((entries[:, 0] < low) | (ends > high)))
        if torn.size:
            raise damaged(
                self._path, rel, (start + int(torn[0]), stop),
                f"is truncated ({size} bytes; the chunk of item {start + int(torn[0])} "
                f"ends at byte {int(ends[torn[0]])})",
            )
        return np.flatnonzero(empty)

    def check_column_chunk(self, name: str, shard: int) -> None:
        self._chunk_file_size(shard, self._column_file(name, shard))
        self._good_columns.add((name, shard))

    def _chunk_file_size(self, shard: int, rel: str) -> int | None:
        """The size of the file holding `shard` of an array; None for a missing file that
        is a hole (zarr wrote nothing because the shard held only fill values: zarrs for
        images, older writers for columns; new stores write every column chunk)."""
        start, stop = self._manifest.shard_bounds(shard)
        try:
            size = (self._path / rel).stat().st_size
        except FileNotFoundError:
            self._explain_holes(shard, np.arange(stop - start), rel, "is missing")
            return None
        if size == 0:
            raise damaged(self._path, rel, (start, stop), "is empty (0 bytes)")
        return size

    def check_digests(self, shard: int) -> None:
        expected = self._manifest.spec.shard_size * DIGEST_SIZE
        rel = f"{DIGESTS}/c.{shard}.0"
        try:
            size = (self._path / rel).stat().st_size
        except FileNotFoundError:
            size = None
        if size != expected:
            state = "is missing" if size is None else f"has {size} bytes, not {expected}"
            raise damaged(self._path, rel, self._manifest.shard_bounds(shard),
                          f"(the item digests) {state}")

    def _explain_holes(self, shard: int, positions: np.ndarray, rel: str, what: str) -> None:
        """A hole is what zarr leaves for a chunk of fill values; it is data only if the
        digests the writer computed from the items say so. Reads the shard unchecked."""
        start, stop = self._manifest.shard_bounds(shard)
        spec = self._manifest.spec
        if self._jpeg:  # an empty file is never a JPEG: a hole is always damage
            first, last = start + int(positions[0]), start + int(positions[-1])
            holes = "" if what == "is missing" else f" {describe_items(first, last + 1)}"
            raise damaged(self._path, rel, (first, last + 1),
                          f"{what}{holes} (zarr would read empty files where JPEGs were written)")
        try:
            images = self._images_array().read(start, stop)[positions]
            columns = {
                name: zarr.open_array(self._path / "columns" / name, mode="r")[start:stop]
                for name in spec.columns
            }
            columns = {name: values[positions] for name, values in columns.items()}
            stored = self._stored_digests(shard)[positions]
            images, columns = coerce_items(spec, images, columns)
            found = item_digests(spec, images, columns)
        except Exception as error:  # noqa: BLE001 - the rest of the shard is damaged too
            raise damaged(
                self._path, rel, (start, stop), f"{what} items and cannot be read "
                f"({short_error(error)})"
            ) from None
        bad = positions[(found != stored).any(axis=1)]
        if bad.size:
            listed = ", ".join(str(start + int(p)) for p in bad[:8])
            listed += ", ..." if bad.size > 8 else ""
            holes = "" if what == "is missing" else f" items {listed}"
            raise damaged(
                self._path, rel, (start + int(bad[0]), start + int(bad[-1]) + 1),
                f"{what}{holes} (zarr would read fill values where data was written)",
            )

    def _stored_digests(self, shard: int) -> np.ndarray:
        start, stop = self._manifest.shard_bounds(shard)
        raw = (self._path / DIGESTS / f"c.{shard}.0").read_bytes()
        return np.frombuffer(raw, dtype=np.uint8).reshape(-1, DIGEST_SIZE)[: stop - start]

    # -- layout ----------------------------------------------------------------------
    def _shards_of(self, start: int, stop: int) -> range:
        size = self._manifest.spec.shard_size
        return range(start // size, -(-stop // size)) if stop > start else range(0)

    def _shard_index(self) -> ShardIndex | None:
        if self._index is None:
            meta = self._array_meta(self._image_name)
            self._index = ShardIndex(meta, self._manifest.spec.shard_size)
        return self._index

    @property
    def _image_name(self) -> str:
        return JPEG_ARRAY if self._jpeg else "images"

    def _image_file(self, shard: int) -> str:
        meta = self._shard_index().meta
        coords = (shard,) if self._jpeg else (shard, 0, 0, 0)
        return f"{self._image_name}/{chunk_key(meta, coords)}"

    def _column_file(self, name: str, shard: int) -> str:
        meta = self._array_meta(f"columns/{name}")
        return f"columns/{name}/{chunk_key(meta, (shard,))}"

    def _array_meta(self, array: str) -> dict[str, Any]:
        """An array's zarr.json (kept: column files are named once per shard)."""
        if array not in self._meta:
            try:
                self._meta[array] = json.loads((self._path / array / "zarr.json").read_text())
            except (OSError, ValueError) as error:
                raise damaged(
                    self._path, f"{array}/zarr.json", None, f"cannot be read ({short_error(error)})"
                ) from None
        return self._meta[array]
