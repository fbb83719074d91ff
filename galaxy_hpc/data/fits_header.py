"""FITS tables that any FITS reader understands: units, descriptions and comments in cards.

astropy keeps column descriptions in a YAML block of COMMENT cards that only astropy
reads, and writes header cards without comments. TOPCAT, fitsio and IDL read the cards:
so each column gets TUNITn (its unit; '' for dimensionless) and TCOMMn (its description,
the convention those tools show), and every card we write carries a comment. astropy's
block stays, so `Table.read` still returns the descriptions.

A card's value and comment share 80 characters. Column keywords (TTYPE, TFORM, TUNIT)
are never split, since readers look them up with single-card calls: their comment is the
longest of a few wordings that fits. Other string cards whose comment does not fit
become FITS 4.0 long strings (the value ends in '&', CONTINUE cards carry the rest and
the comment), which astropy, fitsio and TOPCAT join back; an over-long comment on a
number is an error of ours and raises.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from galaxy_hpc.data.columns import ColumnInfo

try:  # what Table.write does before table_to_hdu: it writes astropy's description block
    from astropy.io.fits.connect import _encode_mixins
except ImportError:  # a private name; without it astropy alone loses the descriptions
    def _encode_mixins(table: Table) -> Table:
        return table

CARD = 80
_TABLE_KEYWORD = re.compile(r"^T(TYPE|FORM|UNIT|NULL|SCAL|ZERO|DISP|DIM|BCOL)\d+$")
PRIMARY_COMMENTS = {"SIMPLE": "conforms to FITS standard", "BITPIX": "array data type",
                    "NAXIS": "number of array dimensions: no image here",
                    "EXTEND": "the table is in extension 1"}


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''").ljust(8) + "'"


def _room(key: str, value: Any) -> int:
    """Characters left for the comment of a one-card `key = value / ` (negative: none)."""
    if isinstance(value, str):
        width = max(20, len(_quoted(value)))
    else:
        width = max(20, len(fits.Card(key, value).image.rstrip()) - 10)
    return CARD - 10 - width - 3


def _long_string(key: str, value: str, comment: str) -> fits.Card:
    """The long-string form of a string card (FITS 4.0 section 4.2.1.2)."""
    text, pieces = value.replace("'", "''"), []
    while True:
        piece = text[:CARD - 13]  # KEY     = '...&'  or  CONTINUE  '...&'
        if piece.endswith("'") and (len(piece) - len(piece.rstrip("'"))) % 2:
            piece = piece[:-1]  # never cut a doubled quote in half
        pieces.append(piece)
        text = text[len(piece):]
        if not text:
            break
    lines = [("" if k == 0 else "CONTINUE  ") + f"'{p}&'" for k, p in enumerate(pieces)]
    lines[0] = f"{key:8}= {lines[0]}"
    words, tail = comment, []
    while words:  # the comment, on CONTINUE cards of its own
        part = words[:CARD - 17]
        tail.append(f"CONTINUE  '&' / {part}")
        words = words[len(part):]
    tail[-1] = tail[-1].replace("'&'", "''", 1)
    return fits.Card.fromstring("".join(line.ljust(CARD) for line in lines + tail))


def put(header: fits.Header, key: str, value: Any, comment: str) -> None:
    """Set `key = value / comment`, in one card when it fits (see the module docstring),
    after the last card with a value (astropy keeps COMMENT blocks last)."""
    if not comment:
        raise ValueError(f"{key}: every card we write needs a comment")
    if key in header:
        del header[key]
    if len(comment) <= _room(key, value):
        card = fits.Card(key, value, comment)
    elif isinstance(value, str):
        card = _long_string(key, value, comment)
    else:
        raise ValueError(f"{key}: comment {comment!r} does not fit beside {value!r}")
    header.append(card)


def _fitting(key: str, value: str, *wordings: str) -> str | None:
    return next((w for w in wordings if len(w) <= _room(key, value)), None)


def describe_columns(hdu: fits.BinTableHDU, infos: Mapping[str, ColumnInfo]) -> None:
    """TUNITn (through the HDU's columns, so astropy keeps it beside TFORMn), comments on
    TTYPEn / TFORMn / TUNITn, and TCOMMn right after the column keywords (astropy moves
    its own column keywords into one block when it writes, so TCOMMn cannot sit among
    them)."""
    header = hdu.header
    comms = []
    for n, column in enumerate(hdu.columns, start=1):
        info = infos.get(column.name) or ColumnInfo()
        if info.unit is not None:
            column.unit = info.unit
            header.comments[f"TUNIT{n}"] = _fitting(
                f"TUNIT{n}", info.unit,
                *((f"field {n} is dimensionless",) if info.unit == ""
                  else (f"physical unit of field {n}", f"unit of field {n}", f"field {n}"))
            ) or ""
        header.comments[f"TTYPE{n}"] = _fitting(f"TTYPE{n}", column.name, f"label for field {n}",
                                                f"field {n}", str(n)) or ""
        header.comments[f"TFORM{n}"] = f"data format of field {n}"
        if info.description is not None:
            comms.append((f"TCOMM{n}", info.description, f"description of field {n}",
                          f"field {n}"))
    position = max(i for i, key in enumerate(header) if _TABLE_KEYWORD.match(key)) + 1
    for key, text, *wordings in comms:
        comment = _fitting(key, text, *wordings)
        card = (fits.Card(key, text, comment) if comment is not None
                else _long_string(key, text, wordings[0]))  # too long for one card
        header.insert(position, card)
        position += 1


def write_fits_table(path: str | Path, table: Table, infos: Mapping[str, ColumnInfo],
                     cards: Mapping[str, tuple[Any, str]], *, extname: str) -> Path:
    """`table` as extension 1 of a FITS file at `path`, with units, descriptions and the
    header `cards` (key -> (value, comment)); written aside and renamed into place, so a
    reader never sees half of it."""
    path = Path(path)
    table = table.copy(copy_data=False)
    for name in table.colnames:  # astropy's own block: descriptions for Table.read
        info = infos.get(name)
        table[name].description = info.description if info else None
        table[name].unit = None  # TUNITn is ours: astropy drops units FITS cannot parse
    hdu = fits.table_to_hdu(_encode_mixins(table), character_as_bytes=True)
    header = hdu.header
    describe_columns(hdu, infos)
    put(header, "EXTNAME", extname, "name of this table")
    for key, (value, comment) in cards.items():
        put(header, key, _plain(value), comment)
    primary = fits.PrimaryHDU()
    for key, comment in PRIMARY_COMMENTS.items():
        primary.header.comments[key] = comment
    tmp = path.with_name(f".{path.name}.writing-{os.getpid()}")
    try:
        fits.HDUList([primary, hdu]).writeto(tmp, overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _plain(value: Any) -> Any:
    """Card values as FITS holds them (numpy scalars become Python ones)."""
    return value.item() if isinstance(value, np.generic) else value
