"""Read a table of Galaxy Zoo 2 votes (CSV or FITS) in GZ2-catalog or Kaggle naming.

Either naming comes back the same way: ids and (N, 37) per-question fractions in Kaggle
order (see `galaxy_hpc.data.gz2` for the encodings), plus vote counts when the table has
GZ2 `_count` columns. Column names match case-insensitively (FITS writers upper-case).
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # astropy is imported when a table is read: CLI start-up stays fast
    from astropy.table import Table

from galaxy_hpc.data.file_names import CSV_ENDINGS, FITS_ENDINGS
from galaxy_hpc.data.gz2 import ANSWERS, column_name, normalise_per_question

GZ2_ID_COLUMNS = ("dr7objid", "objid", "id")
KAGGLE_ID_COLUMNS = ("galaxyid",)
FRACTION_SUFFIXES = ("debiased", "fraction", "weighted_fraction", "count", "weight")
TABLE_ENDINGS = CSV_ENDINGS + FITS_ENDINGS


@dataclass(frozen=True)
class VoteTable:
    ids: np.ndarray  # (N,), as the table stores them (dr7objid is int64)
    fractions: np.ndarray  # (N, 37) per-question fractions, Kaggle order; unreached -> 0
    counts: np.ndarray | None  # (N, 37) int64 vote counts, when the table has `_count`
    naming: str  # "gz2" or "kaggle"
    suffix: str | None  # GZ2 column suffix the fractions came from; None for Kaggle
    path: Path

    def __len__(self) -> int:
        return len(self.ids)


def _open(path: Path) -> tuple[list[str], Callable[[list[str]], "Table"]]:
    """The column names, and a loader of the table restricted to the names it is given.

    For CSV the names come from the header line and only the needed columns are parsed
    (gz2_hart16.csv has ~200 columns); FITS is memory-mapped, so extra columns are free.
    """
    from astropy.table import Table

    name = path.name.lower()
    if name.endswith(CSV_ENDINGS):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", newline="") as handle:
            names = next(csv.reader(handle), [])
        # The fast float converter may differ in the last digit: far below vote precision.
        return names, lambda keep: Table.read(path, format="ascii.csv", include_names=keep,
                                              fast_reader={"use_fast_converter": True})
    if name.endswith(FITS_ENDINGS):
        table = Table.read(path, format="fits", memmap=True)
        return table.colnames, lambda keep: table
    raise ValueError(f"{path}: unknown table format; use a CSV ({', '.join(CSV_ENDINGS)}) "
                     f"or FITS ({', '.join(FITS_ENDINGS)}) file")


def _pick_id(path: Path, lower: dict[str, str], id_column: str | None,
             defaults: tuple[str, ...]) -> str:
    if id_column is not None:
        if id_column.lower() not in lower:
            raise ValueError(f"{path}: no id column {id_column!r}; columns start "
                             f"{', '.join(list(lower.values())[:8])}")
        return lower[id_column.lower()]
    for name in defaults:
        if name in lower:
            return lower[name]
    raise ValueError(f"{path}: no id column ({' or '.join(defaults)}); name it with id_column "
                     f"(--id-column)")


def _block(table: Table, path: Path, names: list[str]) -> np.ndarray:
    """(N, 37) float array of the named columns; masked or NaN cells become 0 (no votes)."""
    out = np.zeros((len(table), len(names)))
    for k, name in enumerate(names):
        column = table[name]
        try:
            values = np.ma.filled(np.ma.asarray(column, dtype=np.float64), 0.0)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: column {name!r} is not numeric") from None
        out[:, k] = np.nan_to_num(values, nan=0.0)
    if np.any(out < 0):
        bad = names[int(np.argwhere(out < 0)[0][1])]
        raise ValueError(f"{path}: column {bad!r} has negative values; votes cannot be negative")
    return out


def read_vote_table(path: str | Path, *, suffix: str | None = None,
                    id_column: str | None = None) -> VoteTable:
    """Read ids and per-question fractions from a GZ2 or Kaggle vote table.

    GZ2 naming (`tNN_..._aNN_..._<suffix>`): `suffix` picks the columns. By default
    `debiased` when the table has it (Hart et al. 2016 corrected it for the bias that
    makes distant galaxies look smoother; it is what the GZ2 team recommends for
    morphology), else `fraction` (raw votes). Note that the raw fractions describe the
    image as volunteers saw it, which can suit image captions better: pass
    `suffix="fraction"` for that. `count` and `weight` work too (normalised per question).
    Values are renormalised per question: catalog fractions are rounded, and debiased
    ones need not sum exactly to 1.

    Kaggle naming (`GalaxyID`, `Class1.1`...): cumulative values, converted to fractions
    (`gz2.kaggle_to_fractions`: each question normalised by its own sum).
    """
    path = Path(path)
    if suffix is not None and suffix not in FRACTION_SUFFIXES:
        raise ValueError(f"suffix {suffix!r} holds no votes: use one of "
                         f"{', '.join(FRACTION_SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such vote table")
    names, load = _open(path)
    header = {n.lower(): n for n in names}
    if "class1.1" in header:
        if suffix is not None:
            raise ValueError(f"{path} is a Kaggle table (Class1.1 ...): drop the suffix, "
                             f"which picks among GZ2 catalog columns")
        naming, picked = "kaggle", None
        wanted = [a.kaggle for a in ANSWERS]
        ids_name = _pick_id(path, header, id_column, KAGGLE_ID_COLUMNS)
    else:
        naming = "gz2"
        picked = suffix or next((s for s in ("debiased", "fraction")
                                 if column_name(ANSWERS[0], s) in header), None)
        if picked is None:
            raise ValueError(f"{path}: neither Kaggle (Class1.1 ...) nor GZ2 columns "
                             f"({column_name(ANSWERS[0], 'debiased')} or "
                             f"{column_name(ANSWERS[0], 'fraction')}) found")
        wanted = [column_name(a, picked) for a in ANSWERS]
        ids_name = _pick_id(path, header, id_column, GZ2_ID_COLUMNS)
    missing = [name for name in wanted if name.lower() not in header]
    if missing:
        raise ValueError(f"{path}: missing column {missing[0]!r} ({len(missing)} of the 37 "
                         f"{naming} answer columns are missing)")
    count_names = [column_name(a, "count") for a in ANSWERS]
    has_counts = naming == "gz2" and all(n in header for n in count_names)

    needed = [ids_name, *wanted, *(count_names if has_counts else ())]
    table = load([header[n.lower()] for n in needed])
    if len(table) == 0:
        raise ValueError(f"{path}: the table has no rows")
    # Kaggle cumulative values and catalog fractions alike: normalise each question.
    fractions = normalise_per_question(_block(table, path, [header[n.lower()] for n in wanted]))
    counts = None
    if has_counts:
        raw = _block(table, path, [header[n] for n in count_names])
        if not np.array_equal(raw, np.round(raw)):
            raise ValueError(f"{path}: the _count columns hold non-integer values")
        counts = raw.astype(np.int64)
    ids = table[ids_name]
    if np.ma.is_masked(ids):
        raise ValueError(f"{path}: id column {ids_name!r} has empty cells")
    return VoteTable(np.asarray(ids, dtype=ids.dtype.newbyteorder("=")), fractions, counts,
                     naming, picked, path)
