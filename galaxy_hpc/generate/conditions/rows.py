"""The rows conditions come from: a CSV or FITS table, or a real store, behind one small
interface (columns by name, ids, and for stores the images img2img starts from).

Column names match case-insensitively (FITS writers upper-case them). A table's identity
is the sha256 of its bytes and a store's its content checksum, so a catalog's provenance
pins the exact conditions it was made from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.data.file_names import CSV_ENDINGS, FITS_ENDINGS

ID_COLUMNS = ("id", "objid", "dr7objid", "galaxyid")


@dataclass
class Rows:
    path: Path
    kind: str  # "table" or "store"
    num_rows: int
    names: list[str]  # column names as the source spells them
    _columns: dict[str, Any] = field(repr=False)  # lower-cased name -> column (loaded lazily)
    store: Any = None  # hpc.store.Store for store sources
    identity: dict[str, Any] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name.lower() in self._columns

    def raw(self, name: str) -> Any:
        if not self.has(name):
            shown = ", ".join(self.names[:12]) + (", ..." if len(self.names) > 12 else "")
            raise ValueError(f"{self.path}: no column {name!r}; columns: {shown or '(none)'}")
        key = name.lower()
        if self._columns[key] is None:  # a store column, read on first use
            original = next(n for n in self.names if n.lower() == key)
            self._columns[key] = self.store.read_column(original)
        return self._columns[key]

    def strings(self, name: str) -> np.ndarray:
        """A column as an object array of str (bytes decoded, masked cells empty)."""
        values = self.raw(name)
        out = np.empty(self.num_rows, dtype=object)
        out[:] = [_text(v) for v in (values.tolist() if hasattr(values, "tolist") else values)]
        return out

    def numbers(self, name: str) -> np.ndarray:
        """A column as float64 (masked cells NaN); ValueError if it is not numeric."""
        values = self.raw(name)
        try:
            array = np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)
        except (TypeError, ValueError):
            raise ValueError(f"{self.path}: column {name!r} is not numeric") from None
        return np.asarray(array, dtype=np.float64).reshape(self.num_rows)

    def column_info(self, name: str) -> dict[str, str]:
        """Unit and description the source itself gives a column: a store's column_info,
        a FITS table's TUNITn and astropy description; {} when it says nothing."""
        original = next((n for n in self.names if n.lower() == name.lower()), None)
        if original is None:
            return {}
        if self.store is not None:
            return self.store.column_info(original)
        column = self._columns[original.lower()]
        unit, description = getattr(column, "unit", None), getattr(column, "description", None)
        return {key: str(value) for key, value in (("unit", unit), ("description", description))
                if value is not None}

    def ids(self, id_column: str | None) -> np.ndarray:
        if id_column is not None:
            return self.strings(id_column)
        found = next((name for name in ID_COLUMNS if self.has(name)), None)
        if found is None:
            empty = np.empty(self.num_rows, dtype=object)
            empty[:] = [""] * self.num_rows
            return empty
        return self.strings(found)


def _text(value: Any) -> str:
    if value is None or value is np.ma.masked:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def read_rows(source: str, path: str) -> Rows:
    if not path:
        raise ValueError("conditions.path is empty: give the table (CSV/FITS) or store the "
                         "conditions come from")
    if source == "store":
        return _store_rows(Path(path))
    return _table_rows(Path(path))


def _table_rows(path: Path) -> Rows:
    from astropy.table import Table

    if not path.is_file():
        raise FileNotFoundError(f"conditions.path: no such table {path}")
    name = path.name.lower()
    try:
        if name.endswith(CSV_ENDINGS):
            table = Table.read(path, format="ascii.csv")
        elif name.endswith(FITS_ENDINGS):
            table = Table.read(path, format="fits")
        else:
            raise ValueError(f"conditions.path: {path} is neither a CSV ({', '.join(CSV_ENDINGS)}) "
                             f"nor a FITS ({', '.join(FITS_ENDINGS)}) table")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"conditions.path: cannot read {path} ({error})") from None
    if len(table) == 0:
        raise ValueError(f"conditions.path: {path} has no rows")
    names = list(table.colnames)
    return Rows(path=path, kind="table", num_rows=len(table), names=names,
                _columns={n.lower(): table[n] for n in names},
                identity={"kind": "table", "path": str(path.resolve()),
                          "sha256": file_sha256(path), "rows": len(table)})


def _store_rows(path: Path) -> Rows:
    from hpc.store import open_store

    store = open_store(path)
    if len(store) == 0:
        raise ValueError(f"conditions.path: the store {path} is empty")
    names = list(store.columns)
    return Rows(path=path, kind="store", num_rows=len(store), names=names,
                _columns={n.lower(): None for n in names}, store=store,
                identity={"kind": "store", "path": str(path.resolve()),
                          "checksum": store.checksum, "rows": len(store)})
