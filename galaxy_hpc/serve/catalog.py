"""The stores a server browses: opened on first use, read an item or a column at a time
(never the whole store), filtered and sorted on columns, thumbnails cached.

A filter is `COLUMN OP VALUE` with OP one of < <= > >= = != (numbers; = and != also for
strings) or ~ (a string column contains VALUE, any case: caption tags), or any condition
`galaxy-hpc select --where` takes (hpc.store.where: `finite(redshift) and label in
['merging']`), so what a browser shows a select writes. Filtering or
sorting reads the named columns whole (a million floats is 8 MB, once: columns are
cached); paging alone reads nothing but the page's rows.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.serve.config import NAME
from hpc.store.where import contains_word

FILTER = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(<=|>=|!=|<|>|=|~)\s*(.*?)\s*$")
# A value no shorthand filter has: the text is a select condition (`x <= 0.5 and ...`).
CONDITION_VALUE = re.compile(r"[()\[\]'\"]|\s(and|or|not|in)\s")
BLOCKS = 4096  # shard-sized column blocks kept per store (LRU)
LIST_COLUMNS = 6  # columns shown under each thumbnail: id-like and caption first


class NotFound(LookupError):
    """An unknown store or an item outside it (404)."""


@dataclass
class OpenStore:
    name: str
    store: Any  # hpc.store.Store
    report: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _stretch: Any = None
    _columns: dict[str, np.ndarray] = field(default_factory=dict)
    _blocks: OrderedDict = field(default_factory=OrderedDict)  # (column, shard start) -> values

    def __len__(self) -> int:
        return len(self.store)

    @property
    def stretch(self) -> Any:
        if self._stretch is None and self.store.spec.image_dtype != "uint8":
            from galaxy_hpc.data.stretch import stretch_for_store

            with self.lock:
                self._stretch = stretch_for_store(self.store)
        return self._stretch

    def column(self, name: str) -> np.ndarray:
        if name not in self.store.spec.columns:
            raise ValueError(f"no column {name!r} in store {self.name}")
        if name not in self._columns:
            with self.lock:
                self._columns[name] = self.store.read_column(name)
        return self._columns[name]

    def summary(self) -> dict[str, Any]:
        spec = self.store.spec
        return {"name": self.name, "count": len(self.store), "backend": self.store.backend,
                "image_shape": list(spec.image_shape), "image_dtype": spec.image_dtype,
                "columns": {n: {"dtype": t, **self.store.column_info(n)}
                            for n, t in spec.columns.items()},
                "list_columns": list_columns(spec.columns),
                "report": f"/api/stores/{self.name}/report" if self.report else None}

    # -- items --------------------------------------------------------------------------
    def check_index(self, index: int) -> int:
        if not 0 <= index < len(self.store):
            raise NotFound(f"store {self.name} has items 0..{len(self.store) - 1}, not {index}")
        return index

    def images(self, index: int) -> np.ndarray:
        self.check_index(index)
        with self.lock:
            return self.store.read_images(index, index + 1)

    def row(self, index: int) -> dict[str, Any]:
        self.check_index(index)
        [row] = self.rows(np.array([index]), list(self.store.spec.columns))
        return row

    def rows(self, indices: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
        """Rows of `indices`: from whole columns a query read, else from shard-sized blocks
        of each column (one read serves every item of a shard: a page, its objects)."""
        values = {}
        for name in names:
            if name in self._columns:
                values[name] = self._columns[name][indices]
            else:
                column = values[name] = np.empty(len(indices), dtype=object)
                for k, i in enumerate(indices.tolist()):
                    column[k] = self._block(name, i)[i - self._shard_start(i)]
        return [{"index": int(i), **{n: plain(values[n][k]) for n in names}}
                for k, i in enumerate(indices.tolist())]

    def _shard_start(self, index: int) -> int:
        size = self.store.spec.shard_size
        return (index // size) * size

    def _block(self, name: str, index: int) -> np.ndarray:
        start = self._shard_start(index)
        key = (name, start)
        with self.lock:
            block = self._blocks.get(key)
            if block is None:
                stop = min(start + self.store.spec.shard_size, len(self.store))
                block = self._blocks[key] = self.store.read_column(name, start, stop)
                while len(self._blocks) > BLOCKS:
                    self._blocks.popitem(last=False)
            else:
                self._blocks.move_to_end(key)
            return block

    # -- queries ------------------------------------------------------------------------
    def query(self, where: list[str], sort: str | None, descending: bool, offset: int,
              limit: int) -> tuple[int, np.ndarray]:
        """(matching count, the store indices of the page)."""
        count = len(self.store)
        if not where and not sort:
            stop = min(count, offset + limit)
            return count, np.arange(min(offset, count), stop, dtype=np.int64)
        keep = np.ones(count, dtype=bool)
        for text in where:
            keep &= self._mask(text)
        chosen = np.flatnonzero(keep)
        if sort:
            values = self.column(sort)[chosen]
            order = np.argsort(values, kind="stable")
            chosen = chosen[order[::-1] if descending else order]
        return len(chosen), chosen[offset:offset + limit]

    def _mask(self, text: str) -> np.ndarray:
        match = FILTER.match(text)
        if not match or CONDITION_VALUE.search(match.group(3)):
            return self._condition(text)
        name, op, value = match.groups()
        values = self.column(name)
        if values.dtype.kind in "iufb":
            if op == "~":
                raise ValueError(f"filter {text!r}: ~ (contains) is for text columns")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"filter {text!r}: {name} is numeric, {value!r} is not a "
                                 "number") from None
            with np.errstate(invalid="ignore"):
                return {"<": values < number, "<=": values <= number, ">": values > number,
                        ">=": values >= number, "=": values == number,
                        "!=": values != number}[op]
        if op == "~":
            return contains_word(values, value)
        strings = values if values.dtype.kind == "T" else \
            np.asarray(values, dtype=np.dtypes.StringDType())
        if op in ("=", "!="):
            return (strings == value) if op == "=" else (strings != value)
        raise ValueError(f"filter {text!r}: {name} is text: use =, != or ~")

    def _condition(self, text: str) -> np.ndarray:
        """A condition as `galaxy-hpc select --where` takes it."""
        from hpc.store.where import WhereError, select_from

        try:
            return select_from(text, list(self.store.spec.columns), self.column,
                               len(self.store))
        except WhereError as error:
            raise ValueError(f"filter {text!r}: write COLUMN OP VALUE (OP one of < <= > >= = "
                             f"!= ~) or a select condition ({error})") from None


def list_columns(columns: dict[str, str]) -> list[str]:
    first = [n for n in ("id", "objid", "dr7objid", "caption", "rare_class", "redshift")
             if n in columns]
    rest = [n for n in columns if n not in first]
    return (first + rest)[:LIST_COLUMNS]


def plain(value: Any) -> Any:
    """A JSON-ready value (numpy scalars and NaN made plain)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, (int, float, bool, type(None))) else str(value)


class StoreSet:
    """The configured stores by name, each opened on first use."""

    def __init__(self, paths: dict[str, str], reports: dict[str, str]) -> None:
        self.paths = dict(paths)
        self.reports = dict(reports)
        self._open: dict[str, OpenStore] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self.paths)

    def get(self, name: str) -> OpenStore:
        if not NAME.match(name):
            raise ValueError(f"store name {name[:40]!r}: only letters, digits, - and _")
        if name not in self.paths:
            raise NotFound(f"no store {name!r} (stores: {', '.join(self.paths) or 'none'})")
        with self._lock:
            if name not in self._open:
                from hpc.store import open_store

                self._open[name] = OpenStore(name, open_store(self.paths[name]),
                                             self.reports.get(name))
            return self._open[name]

    def report_path(self, name: str) -> Path:
        store = self.get(name)
        if not store.report or not Path(store.report).is_file():
            raise NotFound(f"store {name} has no evaluation report")
        return Path(store.report)


class ThumbnailCache:
    """PNG bytes by key, least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Any, make: Any) -> bytes:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
        data = make()
        if self.size:
            with self._lock:
                self._items[key] = data
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return data
