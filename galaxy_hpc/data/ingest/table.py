"""A CSV property table keyed by a non-unique id: one row per id, by a stated rule.

galaxyCGAN's table has COSMOS_id as its primary key and HSC_id as a foreign key, so
one HSC galaxy can have several rows of COSMOS measurements. `prefer` picks one:

- `first` / `last`: the first / last row of that id in file order;
- `max:<column>` / `min:<column>`: the row with the largest / smallest value of a
  numeric column; NaN or empty never wins over a number, ties go to the earlier row,
  and an id whose rows are all NaN keeps its first row.

The rows not chosen are counted (`num_dropped`). Kept columns: the ones named in
`columns`, else every numeric column but the id; int columns stay int64 unless they
have empty cells (then float64 with NaN), booleans stay bool. `rename` maps table
names to store names (e.g. photo_z -> redshift).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table

from galaxy_hpc.data.file_names import FITS_ENDINGS
from galaxy_hpc.data.ingest.records import safe_column


@dataclass
class PropertyTable:
    path: str
    chosen: dict[str, int]  # id -> row kept
    values: dict[str, np.ndarray]  # store column -> value of every table row
    column_types: dict[str, str]
    num_rows: int
    num_dropped: int
    prefer: str

    def take(self, ids: list[str]) -> dict[str, np.ndarray]:
        rows = np.array([self.chosen[i] for i in ids], dtype=np.int64)
        return {name: values[rows] for name, values in self.values.items()}


def id_strings(values: np.ndarray) -> list[str]:
    """Ids as strings; integral floats (an id column with empty cells) lose the '.0'."""
    array = np.ma.asarray(values)
    out = []
    for value, masked in zip(array.data.tolist(), np.ma.getmaskarray(array).tolist(),
                             strict=True):
        if masked:
            out.append("")
        elif isinstance(value, float) and value.is_integer():
            out.append(str(int(value)))
        else:
            out.append(str(value).strip())
    return out


def choose_rows(keys: list[str], prefer: str, ranking: np.ndarray | None = None) -> dict[str, int]:
    chosen: dict[str, int] = {}
    if prefer in ("first", "last"):
        for row, key in enumerate(keys):
            if prefer == "last" or key not in chosen:
                chosen[key] = row
        return chosen
    sign = 1.0 if prefer.startswith("max:") else -1.0
    assert ranking is not None
    for row, key in enumerate(keys):
        current = chosen.get(key)
        value = float(ranking[row])
        if current is None:
            chosen[key] = row
        elif not math.isnan(value):
            best = float(ranking[current])
            if math.isnan(best) or sign * value > sign * best:
                chosen[key] = row
    return chosen


def table_column(table: Table, name: str) -> tuple[np.ndarray, str] | None:
    """(values, store type) of a numeric or boolean column; None for any other."""
    column = table[name]
    kind = column.dtype.kind
    masked = bool(np.any(np.ma.getmaskarray(column)))
    if kind == "b" and not masked:
        return np.asarray(column, dtype=bool), "bool"
    if kind in "iu" and not masked:
        return np.asarray(column, dtype=np.int64), "int64"
    if kind in "iufb":
        return np.ma.filled(np.ma.asarray(column, dtype=np.float64), np.nan), "float64"
    return None


def read_property_table(path: str, *, id_column: str, prefer: str = "first",
                        columns: list[str] | None = None,
                        rename: dict[str, str] | None = None,
                        section: str = "npy") -> PropertyTable:
    """`section` names the config keys the messages point at (npy, catalog)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: property table not found")
    if str(path).lower().endswith(FITS_ENDINGS):
        table = Table.read(path, format="fits")
    else:
        table = Table.read(path, format="ascii.csv", fast_reader={"use_fast_converter": True})
    if id_column not in table.colnames:
        raise ValueError(f"{path}: no id column {id_column!r} (columns: "
                         f"{', '.join(table.colnames[:10])}); name it with "
                         f"{section}.id_column")
    keys = id_strings(table[id_column])
    ranking = None
    if prefer not in ("first", "last"):
        rank_name = prefer.split(":", 1)[1]
        found = table_column(table, rank_name) if rank_name in table.colnames else None
        if found is None:
            raise ValueError(f"{section}.prefer={prefer!r}: {path} has no numeric column "
                             f"{rank_name!r}")
        ranking = found[0].astype(np.float64)
    chosen = choose_rows(keys, prefer, ranking)
    chosen.pop("", None)  # rows with an empty id join nothing

    rename = dict(rename or {})
    wanted = columns if columns is not None else [n for n in table.colnames if n != id_column]
    values, types = {}, {}
    for name in wanted:
        if name not in table.colnames:
            raise ValueError(f"{section}.columns: {path} has no column {name!r}")
        found = table_column(table, name)
        if found is None:
            if columns is None:
                continue  # default: numeric columns only
            found = (np.array(id_strings(table[name]), dtype=object), "str")
        store_name = safe_column(rename.pop(name, name), f"{path}")
        values[store_name], types[store_name] = found
    if rename:
        raise ValueError(f"{section}.rename: {path} has no kept column {', '.join(rename)} "
                         f"(kept: {', '.join(values)})")
    return PropertyTable(path=str(path), chosen=chosen, values=values, column_types=types,
                         num_rows=len(table), num_dropped=len(table) - len(chosen) -
                         sum(1 for k in keys if k == ""), prefer=prefer)
