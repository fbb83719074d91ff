"""Zarr v3 backend: one directory that plain zarr opens.

    X.zarr/
      zarr.json                group; attribute `hpc_store` holds the manifest
      images/                  (N, C, H, W), chunks of one image, zarr shards of shard_size
      jpeg/                    instead of images with compression jpeg-source: (N,) bytes,
                               each item its source JPEG file (attribute images_shape)
      columns/<name>/          (N,), chunks of shard_size (one file per store shard);
                               attributes `unit`, `description` where the spec has them
      item_digests/            (N, 32) uint8, chunks of shard_size, keys `c.<j>.0`

A shard is complete when its `item_digests` chunk exists: writers write the images and
columns of shard j, then the digest chunk (raw bytes, no codec) by atomic rename. That
chunk is the completion record and also a normal zarr chunk, so plain zarr users see a
per-item sha256 array and no foreign files in the hierarchy.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, GzipCodec, ZstdCodec
from zarr.dtype import VariableLengthBytes

from hpc.store._fs import atomic_write_bytes
from hpc.store.backend import NotAStore, StoreBackend, StoreReader
from hpc.store.checksum import DIGEST_SIZE
from hpc.store.damage import chunk_checksums_enabled, damaged, short_error
from hpc.store.manifest import MANIFEST_KEY, Manifest
from hpc.store.spec import StoreSpec

DIGESTS = "item_digests"
JPEG_ARRAY = "jpeg"  # jpeg-source stores: the source files, instead of `images`
STAMP_KEY = "hpc_store_verified"  # group attribute: the last `store verify`
ZARRS_ENV = "HPC_STORE_ZARRS"
READ_THREADS_ENV = "HPC_STORE_READ_THREADS"  # zarrs threads per reading process

_zarrs_pid: int | None = None  # the process whose Rust thread pool zarrs started in
_zarrs_failed = False
_warned_fork = False


def zarrs_config() -> dict[str, Any]:
    """zarr config selecting the zarrs (Rust) codec pipeline, or {} for zarr's own.

    zarrs reads ~10x faster here (README.md); it reads identical values and writes
    identical bytes for zstd and raw chunks (tests/hpc/store/test_store_zarrs.py). It is
    skipped when not importable, when HPC_STORE_ZARRS=0, after it failed once, and in a
    process forked after its parent opened an array with it: zarrs' thread pool does not
    survive fork() and such a child hangs (a DataLoader with fork workers whose parent
    read images).
    """
    global _zarrs_pid, _warned_fork
    if _zarrs_failed or os.environ.get(ZARRS_ENV, "1") == "0":
        return {}
    try:
        import zarrs  # noqa: F401
    except ImportError:
        return {}
    pid = os.getpid()
    if _zarrs_pid is None:
        _zarrs_pid = pid
    elif _zarrs_pid != pid:
        if not _warned_fork:
            _warned_fork = True
            warnings.warn(
                "hpc.store: this process was forked after its parent read a zarr store with "
                "the zarrs pipeline, which cannot run after fork(); reading with zarr's slower "
                "pipeline. Use the 'spawn' or 'forkserver' start method, or do not read images "
                "in the parent before forking.",
                RuntimeWarning,
                stacklevel=3,
            )
        return {}
    return {"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}


def _read_threads() -> int:
    value = os.environ[READ_THREADS_ENV]
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"${READ_THREADS_ENV} must be a positive integer, got {value!r}")
    return int(value)


def _disable_zarrs() -> None:
    global _zarrs_failed
    _zarrs_failed = True


class ImagesArray:
    """The `images` array, through zarrs when possible, falling back to zarr's own
    pipeline (once, for the rest of the process) if zarrs raises.

    Writers encode with one zarrs thread: its parallel encoder lays out the chunks of a
    shard in completion order, so the bytes would vary from run to run; with one thread
    they are identical to zarr-python's (tested), at ~20% of write speed on 2 cores - and
    a writer per core is the norm. Readers use all threads (order does not matter there),
    or $HPC_STORE_READ_THREADS of them: DataLoader workers that each decode on every core
    oversubscribe them, and per-core benchmarks need one.
    """

    def __init__(self, path: Path, mode: str) -> None:
        self._path, self._mode = path / "images", mode
        config = zarrs_config()
        if config and mode != "r":
            config["threading.max_workers"] = 1
        elif config and os.environ.get(READ_THREADS_ENV):
            config["threading.max_workers"] = _read_threads()
        self._array, self.uses_zarrs = self._open(config)

    def _open(self, config: dict[str, Any]) -> tuple[zarr.Array, bool]:
        if config:
            try:
                with zarr.config.set(config), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return zarr.open_array(self._path, mode=self._mode), True
            except Exception:
                _disable_zarrs()
        return zarr.open_array(self._path, mode=self._mode), False

    def _retry(self, operation):
        """operation(array); if zarrs raises and zarr's own pipeline does not, read with
        zarr's from then on. If both raise, the data is at fault, not zarrs: keep it."""
        try:
            return operation(self._array)
        except Exception:
            if not self.uses_zarrs:
                raise
            fallback, _ = self._open({})
            result = operation(fallback)
            _disable_zarrs()
            self._array, self.uses_zarrs = fallback, False
            return result

    def read(self, start: int, stop: int) -> np.ndarray:
        return self._retry(lambda array: array[start:stop])

    def write(self, start: int, stop: int, images: np.ndarray) -> None:
        def operation(array: zarr.Array) -> None:
            array[start:stop] = images

        self._retry(operation)


def _compressors(spec: StoreSpec) -> list[Any] | None:
    """The bytes codecs of every chunk: the spec's compressor, then a crc32c of the result,
    so that a flipped byte is an error on every read (zarrs and zarr both check it; it
    costs ~1-3% of the training read rate, benchmarks/bench_data.py)."""
    codecs: list[Any] = []
    if spec.compression == "zstd":
        codecs.append(ZstdCodec(level=spec.compression_level))
    elif spec.compression == "gzip":
        codecs.append(GzipCodec(level=spec.compression_level))
    if chunk_checksums_enabled():
        codecs.append(Crc32cCodec())
    return codecs or None


def _create_jpeg_array(group: zarr.Group, n: int, spec: StoreSpec) -> None:
    """`jpeg` (N,) of variable-length bytes, each item the file it came from: one chunk
    per item in zarr shards of shard_size, laid out as `images` is (index at the end, a
    crc32c on each chunk), so the reader's file checks apply unchanged and a slice reads
    only its own files. `images_shape` says what the files decode to."""
    with warnings.catch_warnings():  # zarr: vlen bytes has no v3 spec document yet
        warnings.simplefilter("ignore")
        group.create_array(
            JPEG_ARRAY,
            shape=(n,),
            dtype=VariableLengthBytes(),
            chunks=(1,),
            shards=(spec.shard_size,),
            compressors=[Crc32cCodec()] if chunk_checksums_enabled() else None,
            attributes={"images_shape": list(spec.image_shape), "format": "JPEG",
                        "description": "each item is a JPEG file, byte for byte as ingested; "
                        "decode with PIL.Image.open(io.BytesIO(item))"},
        )


class JpegArray:
    """The `jpeg` array of a jpeg-source store, through zarr's own pipeline (it checks the
    crc32c of every chunk it reads, also in partial shard reads)."""

    def __init__(self, path: Path, mode: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._array = zarr.open_array(path / JPEG_ARRAY, mode=mode)

    def read(self, start: int, stop: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._array[start:stop]

    def write(self, start: int, stop: int, blobs: np.ndarray) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._array[start:stop] = blobs


def _build_hierarchy(root: Path, manifest: Manifest) -> None:
    spec, n = manifest.spec, manifest.num_items
    shape, size = spec.image_shape, spec.shard_size
    compressors = _compressors(spec)
    group = zarr.open_group(
        root, mode="w", zarr_format=3, attributes={MANIFEST_KEY: manifest.to_dict()}
    )
    if spec.keeps_jpeg:
        _create_jpeg_array(group, n, spec)
    else:
        group.create_array(
            "images",
            shape=(n, *shape),
            dtype=spec.image_dtype,
            chunks=(1, *shape),
            shards=(size, *shape),
            compressors=compressors,
            fill_value=0,
        )
    columns = group.create_group("columns")
    for name, dtype in spec.columns.items():
        columns.create_array(
            name,
            shape=(n,),
            dtype=str if dtype == "str" else dtype,
            chunks=(size,),
            compressors=compressors,
            attributes=spec.column_info.get(name, {}),
        )
    group.create_array(
        DIGESTS,
        shape=(n, DIGEST_SIZE),
        dtype="uint8",
        chunks=(size, DIGEST_SIZE),
        compressors=None,
        fill_value=0,
        chunk_key_encoding={"name": "default", "separator": "."},
    )


class ZarrBackend(StoreBackend):
    name = "zarr"
    RECORD_NAME = "c.{shard}.0"
    RECORD_PATTERN = re.compile(r"^c\.(\d+)\.0$")

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._images: ImagesArray | JpegArray | None = None
        self._columns: dict[str, zarr.Array] = {}

    @staticmethod
    def detect(path: Path) -> bool:
        return (path / "zarr.json").is_file()

    @property
    def folder(self) -> Path:
        return self.path

    @property
    def records_dir(self) -> Path:
        return self.path / DIGESTS

    def paths(self) -> list[Path]:
        return [self.path]

    def record_name(self, shard: int) -> str:
        return f"{DIGESTS}/{self.RECORD_NAME.format(shard=shard)}"

    def read_manifest(self) -> Manifest:
        try:
            meta = json.loads((self.path / "zarr.json").read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.path}: not a store (no zarr.json)") from None
        except (OSError, ValueError) as error:
            raise damaged(
                self.path, "zarr.json", None, f"cannot be read ({short_error(error)})"
            ) from None
        stored = meta.get("attributes", {}).get(MANIFEST_KEY)
        if stored is None:
            raise NotAStore(
                f"{self.path}: a zarr group, but not an hpc.store store "
                f"(no '{MANIFEST_KEY}' attribute)", path=self.path, what="zarr",
            )
        return Manifest.from_dict(stored)

    def _build(self, tmp: Path, manifest: Manifest) -> None:
        _build_hierarchy(tmp, manifest)

    def _write_data(
        self, manifest: Manifest, shard: int, images: np.ndarray, columns: dict[str, np.ndarray]
    ) -> None:
        start, stop = manifest.shard_bounds(shard)
        if self._images is None:
            self._images = (JpegArray(self.path, "r+") if manifest.spec.keeps_jpeg
                            else ImagesArray(self.path, "r+"))
        self._images.write(start, stop, images)
        # Every column chunk is written, fill values too: a missing one is then damage.
        with zarr.config.set({"array.write_empty_chunks": True}):
            for name, values in columns.items():
                if name not in self._columns:
                    self._columns[name] = zarr.open_array(self.path / "columns" / name, mode="r+")
                self._columns[name][start:stop] = values

    def _write_record(self, manifest: Manifest, shard: int, digests: np.ndarray) -> None:
        """The shard's chunk of `item_digests`, raw bytes padded to a whole chunk: a
        normal zarr chunk to plain zarr users."""
        padded = np.zeros((manifest.spec.shard_size, DIGEST_SIZE), dtype=np.uint8)
        padded[: len(digests)] = digests
        record = self.record_path(shard)
        record.parent.mkdir(exist_ok=True)
        atomic_write_bytes(record, padded.tobytes())

    def read_digests(self, manifest: Manifest, shard: int) -> np.ndarray:
        start, stop = manifest.shard_bounds(shard)
        record = self.record_path(shard)
        raw = record.read_bytes()
        size = manifest.spec.shard_size * DIGEST_SIZE
        if len(raw) != size:
            raise ValueError(
                f"{record}: completion record has {len(raw)} bytes, "
                f"expected {size}; rewrite shard {shard}"
            )
        return np.frombuffer(raw, dtype=np.uint8).reshape(-1, DIGEST_SIZE)[: stop - start]

    def finalize(self, manifest: Manifest, digests: np.ndarray) -> None:
        del digests  # already in item_digests, chunk by chunk
        group = zarr.open_group(self.path, mode="r+")
        attributes = dict(group.attrs.asdict())
        attributes[MANIFEST_KEY] = manifest.to_dict()
        group.attrs.put(attributes)

    def check_present(self, manifest: Manifest) -> None:
        """Nothing to check cheaply at open: zarr stores no file for an all-fill chunk
        (zarrs not even with write_empty_chunks), so the reader checks each shard as it
        first reads it (zarr_reader.py)."""

    def check_shards(self, manifest: Manifest, shards: list[int]) -> None:
        from hpc.store.zarr_reader import ZarrReader

        reader = ZarrReader(self.path, manifest)
        for shard in shards:
            reader.check_image_shard(shard)
            for name in manifest.spec.columns:
                reader.check_column_chunk(name, shard)

    def read_stamp(self) -> dict[str, Any] | None:
        meta = json.loads((self.path / "zarr.json").read_text())
        return meta.get("attributes", {}).get(STAMP_KEY)

    def write_stamp(self, stamp: dict[str, Any]) -> None:
        """A group attribute, zarr.json rewritten by atomic rename: a reader never sees a
        torn file, and plain zarr users see when the store was last verified."""
        meta = json.loads((self.path / "zarr.json").read_text())
        meta.setdefault("attributes", {})[STAMP_KEY] = stamp
        atomic_write_bytes(self.path / "zarr.json", json.dumps(meta, indent=2).encode())

    def reader(self, manifest: Manifest) -> StoreReader:
        from hpc.store.zarr_reader import ZarrReader  # it builds on ImagesArray above

        return ZarrReader(self.path, manifest)
