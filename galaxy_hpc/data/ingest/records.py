"""What every source reader hands the ingest driver: a listing of records, and rejects.

A reader works in two steps. `list_records` runs once (on rank 0) and is cheap: it
finds the records, their ids and the columns known without decoding an image
(captions from a manifest, vote fractions, catalogue properties), and sets aside
what is wrong before any pixel is read (duplicate ids, missing captions, joins that
find nothing). `decode(index)` then turns one record into a preprocessed image on
whichever rank owns it, raising `RejectError` (or an I/O error, see DECODE_ERRORS)
when that one record is bad.

Reasons are `category: detail`; the category is a fixed word from REASONS so that
scripts (and the summary) can count them.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from astropy.io.fits.verify import VerifyError
from PIL import Image, UnidentifiedImageError

REASONS = {
    "unreadable": "the file could not be read or decoded",
    "truncated": "the file ends before its data does",
    "not_an_image": "the file is not an image in any format PIL reads",
    "missing_file": "a listed file does not exist",
    "all_nan": "the image has no finite pixel",
    "some_nonfinite": "some pixels are NaN or infinite (rejected with nonfinite=reject)",
    "wrong_shape": "the image is not 2-D (or 3-D bands, y, x), or is empty",
    "band_count": "the image has a different number of bands than the store",
    "pixel_type": "a float image where the store holds 8-bit pictures, or the other way",
    "no_image_hdu": "the FITS file has no image HDU with data (or not the one asked for)",
    "missing_band": "with fits.bands, an object without a file for every band",
    "not_a_band_file": "with fits.bands, a FITS file whose name fits.band_pattern does not match",
    "missing_caption": "captions are required and this record has none (or an empty one)",
    "bad_caption": "the caption cannot be stored (NUL character, not UTF-8)",
    "bad_record": "a manifest line that is not a JSON object with a path",
    "duplicate_id": "the same id as an earlier record (the first one is kept)",
    "no_image": "a vote row whose image file does not exist",
    "no_vote_row": "an image whose id has no row in the vote table",
    "no_table_row": "an image whose id has no row in the property table",
    "no_catalog_row": "with catalog.table, a record whose id has no row in the catalog",
    "no_label": "with folder.labels, an image that is not inside a class folder",
    "bad_label": "with hdf5.label_column, a class code that hdf5.label_names does not name",
}

# What decoding one bad file can raise. Anything else is a bug and stops the job.
DECODE_ERRORS = (
    OSError,  # includes FileNotFoundError, PIL's UnidentifiedImageError, "truncated"
    ValueError,  # includes UnicodeDecodeError; astropy's "cannot reshape" on short data
    EOFError,
    SyntaxError,  # PIL raises it for some malformed headers
    struct.error,
    zlib.error,
    IndexError,
    KeyError,
    TypeError,
    VerifyError,
    Image.DecompressionBombError,
)


# Columns every store has (id, source, crop_size) or may have (caption, and for float
# images nonfinite_pixels: galaxy_hpc.data.nonfinite).
RESERVED_COLUMNS = ("id", "source", "caption", "crop_size", "nonfinite_pixels")


def safe_column(name: str, where: str) -> str:
    """A store column name for a table column or header key: characters other than
    letters, digits, '_', '.', '-' become '_'; the reserved names are refused."""
    safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", name.strip())
    safe = safe if re.match(r"^[A-Za-z_]", safe) else f"_{safe}"
    if safe in RESERVED_COLUMNS:
        raise ValueError(f"{where}: column {name!r} would replace the store's own {safe!r} "
                         f"column; rename it")
    return safe


class Reject(NamedTuple):
    source: str
    reason: str
    id: str = ""

    @property
    def category(self) -> str:
        return self.reason.split(":", 1)[0]


class RejectError(Exception):
    """One record is bad: `category` is a key of REASONS, `detail` says what was found."""

    def __init__(self, category: str, detail: str) -> None:
        assert category in REASONS, category
        super().__init__(f"{category}: {detail}")
        self.category = category


def reason_for(error: BaseException) -> str:
    """`category: detail` for an exception raised while decoding one record."""
    if isinstance(error, RejectError):
        return str(error)
    if isinstance(error, FileNotFoundError):
        category = "missing_file"
    elif isinstance(error, UnidentifiedImageError):
        category = "not_an_image"
    elif "truncated" in str(error).lower():
        category = "truncated"
    else:
        category = "unreadable"
    detail = " ".join(f"{type(error).__name__}: {error}".split())
    return f"{category}: {detail[:300]}"


def check_caption(text: str) -> str:
    """The caption stripped; RejectError when it is empty or cannot be stored."""
    text = text.strip()
    if not text:
        raise RejectError("missing_caption", "the caption is empty")
    if "\x00" in text:
        raise RejectError("bad_caption", "the caption holds a NUL character")
    return text


@dataclass
class Listing:
    """Records of one source, as rank 0 found them; broadcast to every rank.

    `columns` hold values known at listing time, one per record; `column_types` names
    every column the store gets besides id, source and crop_size (decode-time ones too,
    e.g. FITS header keys). `payload` is what only the reader needs (paths, row numbers).
    """

    kind: str
    ids: np.ndarray  # object array of str
    sources: np.ndarray  # object array of str
    dtype: str  # "uint8" (RGB) or "float32" (flux, any number of bands)
    channels: int
    column_types: dict[str, str] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)  # JSON facts for summary and attrs
    inputs: list[str] = field(default_factory=list)  # files read, for provenance
    payload: Any = None
    # Records set aside before decoding (index -> reject reason), e.g. those the catalog
    # has no row for: the ranks reject them in place of decoding them.
    refused: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = _strings(self.ids)
        self.sources = _strings(self.sources)
        assert len(self.ids) == len(self.sources)
        for name, values in self.columns.items():
            assert len(values) == len(self.ids), name

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Decoded:
    image: np.ndarray  # (C, size, size) in the listing's dtype
    crop_size: int  # side of the centred square cut from the source, in its pixels
    columns: dict[str, Any] = field(default_factory=dict)  # decode-time values
    missing: tuple[str, ...] = ()  # decode-time columns the record had no value for


def _strings(values: Any) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [str(v) for v in values]
    return out


class Deduper:
    """Keeps the first record of each id; later ones become duplicate_id rejects."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}

    def check(self, record_id: str, source: str) -> Reject | None:
        if record_id in self.first:
            return Reject(source, f"duplicate_id: id {record_id!r} was already taken by "
                                  f"{self.first[record_id]}", record_id)
        self.first[record_id] = source
        return None


def keep_rows(ids: list[str], path: str,
              refuse: Callable[[int, str, str], Reject | None] | None = None
              ) -> tuple[list[int], list[str], list[str], list[Reject]]:
    """(rows kept, their ids, their sources, rejects) of the records of an array file, in
    row order (the source of row i is `path[i]`): the first of each id is kept, later
    ones are duplicate_id rejects, and so is whatever `refuse(row, id, source)` rejects."""
    rows, kept_ids, sources, rejects = [], [], [], []
    dedupe = Deduper()
    for row, record_id in enumerate(ids):
        source = f"{path}[{row}]"
        reject = dedupe.check(record_id, source) or (refuse and refuse(row, record_id, source))
        if reject:
            rejects.append(reject)
        else:
            rows.append(row)
            kept_ids.append(record_id)
            sources.append(source)
    return rows, kept_ids, sources, rejects
