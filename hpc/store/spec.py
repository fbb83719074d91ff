"""What a store holds: image shape and dtype, per-item columns, sharding and compression.

A `StoreSpec` is validated when it is built, so a typo in a config fails before any
job starts, with a message naming the field. The spec is written into the store;
a resumed job compares its own spec with the stored one field by field.

Columns may carry a `unit` and a `description` (`column_info`), given by the caller:
this layer stores and returns them (also as attributes of each column array, for plain
zarr/h5py users) but knows nothing of what they mean. They are metadata, not content:
they do not enter the checksum.
"""

from __future__ import annotations

import numbers
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any, Mapping

IMAGE_DTYPES = ("uint8", "float32")
COLUMN_DTYPES = ("str", "float64", "float32", "int64", "bool")
BACKENDS = ("zarr", "hdf5")
# "jpeg-source": uint8 RGB images kept as the JPEG files they came from (jpeg.py); the
# writer is handed the files' bytes, not pixels. Opt-in only: lossy sources alone.
JPEG_SOURCE = "jpeg-source"
COMPRESSIONS = ("zstd", "gzip", "none", JPEG_SOURCE)
# The HDF5 wheel has no zstd filter (that needs the hdf5plugin package), and a file
# that needs a plugin is one most astronomers' tools cannot open anyway.
BACKEND_COMPRESSIONS = {"zarr": ("zstd", "gzip", "none", JPEG_SOURCE), "hdf5": ("gzip", "none")}
LEVEL_RANGES = {"zstd": (-7, 22), "gzip": (0, 9)}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
# What a store's name promises to whoever opens it: h5py is pointed at `x.h5`, zarr at
# `x.zarr`. A Zarr folder named x.h5 is a store nobody's tools open.
SUFFIX_BACKENDS = {".zarr": "zarr", ".h5": "hdf5", ".hdf5": "hdf5"}
COLUMN_INFO_KEYS = ("unit", "description")


def default_compression(backend: str, image_dtype: str) -> str:
    """The compression a spec gets when it names none.

    Measured on 3x128x128 images against the other candidates (zstd levels, blosc,
    delta, lossless PNG/WebP, the source JPEG bytes: hpc/store/README.md): zstd level 1
    on uint8 saves 26% (JPEG-sourced pixels) to 39% (rendered galaxies), no other level
    or lossless codec saves more than a few points beyond it, and through the zarrs
    pipeline it decodes at ~7x a JPEG folder per core; uncompressed reads ~1.8x faster.
    float32 flux is dominated by noise in its mantissa bits: zstd saves ~7% and halves the
    read rate, so float32 is stored raw. HDF5 offers only gzip, which reads at ~1,500 img/s
    (slower than JPEG), so HDF5 stores are raw by default.
    """
    if backend == "zarr" and image_dtype == "uint8":
        return "zstd"
    return "none"


def backend_for_path(path: str | os.PathLike, requested: str | None = None,
                     default: str = "zarr") -> str:
    """The backend of a new store at `path`: `requested` (a config's `format`), else the
    one its suffix names (.zarr; .h5/.hdf5), else `default`. A suffix and a `requested`
    backend that disagree are a ValueError: the user asked for two things and only they
    know which was meant. Every config that names a store resolves its format here."""
    suffix = PurePath(path).suffix.lower()
    implied = SUFFIX_BACKENDS.get(suffix)
    if requested is not None and requested not in BACKENDS:
        raise ValueError(f"format must be one of {', '.join(BACKENDS)}, got {requested!r}")
    if implied and requested and implied != requested:
        wanted = "a name ending in .zarr" if requested == "zarr" else "a name ending in .h5"
        raise ValueError(f"format {requested!r} clashes with the store name {str(path)!r} "
                         f"({suffix} means {implied}): give {wanted} or format {implied!r}")
    return requested or implied or default


@dataclass(frozen=True)
class StoreSpec:
    """Layout and content type of a store.

    `compression=None` picks `default_compression(backend, image_dtype)`;
    `compression_level=None` picks level 1 (fast to write, most of the gain).
    `column_info` maps a column to {"unit": ..., "description": ...} (either key may be
    left out; unit "" means dimensionless, an absent unit means none is known).
    """

    image_shape: tuple[int, ...]
    image_dtype: str = "uint8"
    columns: dict[str, str] = field(default_factory=dict)
    shard_size: int = 256
    backend: str = "zarr"
    compression: str | None = None
    compression_level: int | None = None
    column_info: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = self.image_shape
        if (
            not isinstance(shape, (tuple, list))
            or len(shape) != 3
            or not all(_is_int(d) and d > 0 for d in shape)
        ):
            raise ValueError(
                f"image_shape must be three positive integers (C, H, W), got {shape!r}"
            )
        object.__setattr__(self, "image_shape", tuple(int(d) for d in shape))
        if self.image_dtype not in IMAGE_DTYPES:
            raise ValueError(
                f"image_dtype must be one of {', '.join(IMAGE_DTYPES)}, got {self.image_dtype!r}"
            )
        if not isinstance(self.columns, Mapping):
            raise ValueError(f"columns must map names to dtypes, got {self.columns!r}")
        for name, dtype in self.columns.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise ValueError(
                    f"columns: name {name!r} must start with a letter or '_' and hold only "
                    "letters, digits, '_', '.', '-'"
                )
            if dtype not in COLUMN_DTYPES:
                raise ValueError(
                    f"columns: dtype of {name!r} must be one of {', '.join(COLUMN_DTYPES)}, "
                    f"got {dtype!r}"
                )
        object.__setattr__(self, "columns", dict(self.columns))
        object.__setattr__(self, "column_info", self._checked_column_info())
        if not _is_int(self.shard_size) or self.shard_size < 1:
            raise ValueError(f"shard_size must be a positive integer, got {self.shard_size!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        self._resolve_compression()

    def _checked_column_info(self) -> dict[str, dict[str, str]]:
        """Validated, in column order, without empty entries: so that two specs with the
        same information compare equal whatever order or empty parts the caller used."""
        info = self.column_info
        if not isinstance(info, Mapping):
            raise ValueError(f"column_info must map column names to dicts, got {info!r}")
        unknown = [name for name in info if name not in self.columns]
        if unknown:
            raise ValueError(f"column_info: {unknown[0]!r} is not one of the columns")
        out: dict[str, dict[str, str]] = {}
        for name in self.columns:
            entry = info.get(name) or {}
            if not isinstance(entry, Mapping) or set(entry) - set(COLUMN_INFO_KEYS):
                raise ValueError(
                    f"column_info of {name!r} must be a dict with keys among "
                    f"{', '.join(COLUMN_INFO_KEYS)}, got {entry!r}"
                )
            kept = {key: entry[key] for key in COLUMN_INFO_KEYS if entry.get(key) is not None}
            for key, value in kept.items():
                if not isinstance(value, str):
                    raise ValueError(
                        f"column_info: {key} of {name!r} must be a string, got {value!r}"
                    )
            if kept:
                out[name] = kept
        return out

    def _resolve_compression(self) -> None:
        compression = self.compression
        if compression is None:
            compression = default_compression(self.backend, self.image_dtype)
        allowed = BACKEND_COMPRESSIONS[self.backend]
        if compression not in allowed:
            hint = {
                "zstd": " (HDF5 here has no zstd filter; use zarr for zstd)",
                JPEG_SOURCE: " (source JPEG bytes are kept in Zarr stores only; use a .zarr "
                "store for jpeg-source)",
            }.get(compression, "")
            raise ValueError(
                f"compression must be one of {', '.join(allowed)} for backend "
                f"{self.backend!r}, got {compression!r}{hint}"
            )
        level = self.compression_level
        if compression == JPEG_SOURCE:
            self._check_jpeg_source()
        if compression in ("none", JPEG_SOURCE):
            if level is not None:
                raise ValueError(
                    f"compression_level must be left unset when compression is {compression!r}"
                )
        else:
            low, high = LEVEL_RANGES[compression]
            level = 1 if level is None else level
            if not _is_int(level) or not low <= level <= high:
                raise ValueError(
                    f"compression_level for {compression} must be an integer in "
                    f"[{low}, {high}], got {level!r}"
                )
            level = int(level)
        object.__setattr__(self, "compression", compression)
        object.__setattr__(self, "compression_level", level)

    def _check_jpeg_source(self) -> None:
        """JPEG is 8-bit RGB and lossy: float32 flux is never stored lossily, and other
        channel counts are not what a JPEG file holds."""
        if self.image_dtype != "uint8":
            raise ValueError(
                f"compression {JPEG_SOURCE!r} keeps source JPEG files and holds uint8 RGB "
                f"images only; a {self.image_dtype} store is never stored lossily: use "
                "'none' (or 'zstd')"
            )
        if self.image_shape[0] != 3:
            raise ValueError(
                f"compression {JPEG_SOURCE!r} holds RGB images (3 channels), got image_shape "
                f"{self.image_shape}"
            )

    @property
    def keeps_jpeg(self) -> bool:
        """Whether images are stored as source JPEG bytes (the reader decodes them)."""
        return self.compression == JPEG_SOURCE

    # -- layout -------------------------------------------------------------------------

    def num_shards(self, num_items: int) -> int:
        return -(-num_items // self.shard_size)

    def shard_bounds(self, shard: int, num_items: int) -> tuple[int, int]:
        """Items [start, stop) of a shard; the last shard may be short."""
        start = shard * self.shard_size
        return start, min(start + self.shard_size, num_items)

    # -- serialisation ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["image_shape"] = list(self.image_shape)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StoreSpec":
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown store spec field(s): {', '.join(unknown)}")
        values = dict(data)
        if "image_shape" in values:
            values["image_shape"] = tuple(values["image_shape"])
        return cls(**values)

    def content_dict(self) -> dict[str, Any]:
        """The part of the spec that describes content, not layout: it enters the checksum,
        so that the same items give the same checksum in any backend, shard size or codec."""
        return {
            "image_shape": list(self.image_shape),
            "image_dtype": self.image_dtype,
            "columns": {name: self.columns[name] for name in sorted(self.columns)},
        }

    def differences(self, other: "StoreSpec") -> list[str]:
        """Human-readable `field: ours != theirs` lines, for resume errors (column_info
        per column: the whole of it would bury the one description that changed)."""
        ours, theirs = self.to_dict(), other.to_dict()
        lines = [
            f"{key}: {ours[key]!r} != {theirs[key]!r}"
            for key in ours
            if key != "column_info" and ours[key] != theirs[key]
        ]
        mine, yours = self.column_info, other.column_info
        for name in [*mine, *(n for n in yours if n not in mine)]:
            if mine.get(name) != yours.get(name):
                lines.append(f"column_info of {name!r}: {mine.get(name)!r} != {yours.get(name)!r}")
        return lines


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
