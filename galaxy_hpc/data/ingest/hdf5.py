"""An HDF5 file of arrays: a stack of images beside 1-D datasets of one value per image.

The layout of Galaxy10 (astroNN's Galaxy10_DECals.h5: `images` [n, 256, 256, 3] uint8,
`ans` class codes, `ra`, `dec`, `redshift`, `pxscale`) and of many catalogues exported
from numpy. The image dataset is the one named in `hdf5.images`, or the file's only
dataset of 3 or 4 axes; its band axis is found as for NPY stacks (arrays.py). Every
1-D dataset of n values becomes a column (numbers by default, text when named), named
by its last path component. `hdf5.label_column` with `hdf5.label_names` turns integer
class codes into a text `label` column, the one the report's per-class grids read; a
code with no name is a `bad_label` reject. The source of record i is `FILE[i]`.

Each rank opens the file read-only and reads the rows of its blocks a slice at a
time (a compressed dataset decompresses a chunk per read, so row-by-row reads of a
chunk of many images would decompress it many times). A damaged chunk sets aside the
rows stored in it (`unreadable`), and only those.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from galaxy_hpc.data.ingest.arrays import (bands_first, check_uint8_bands, is_uint8,
                                           preprocess_array, stack_layout)
from galaxy_hpc.data.ingest.config import IngestConfig
from galaxy_hpc.data.ingest.records import (DECODE_ERRORS, Decoded, Listing, Reject, keep_rows,
                                            safe_column)
from galaxy_hpc.data.ingest.table import id_strings

_READ_ROWS = 32  # rows read at once by a rank


def _open(path: str):
    import h5py

    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such HDF5 file") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read as an HDF5 file ({error})") from None


def _datasets(handle) -> dict[str, Any]:
    import h5py

    found: dict[str, Any] = {}

    def visit(name: str, item: Any) -> None:  # returning a value would stop the walk
        if isinstance(item, h5py.Dataset):
            found[name] = item

    handle.visititems(visit)
    return found


def _image_dataset(datasets: dict[str, Any], named: str | None, path: str) -> str:
    if named is not None:
        key = named.strip("/")
        if key not in datasets:
            raise ValueError(f"{path}: no dataset {named!r} (datasets: "
                             f"{', '.join(sorted(datasets)) or 'none'})")
        return key
    stacks = [name for name, d in datasets.items() if d.ndim in (3, 4)]
    if len(stacks) != 1:
        what = f"{len(stacks)} datasets of 3 or 4 axes ({', '.join(stacks)})" if stacks \
            else "no dataset of 3 or 4 axes"
        raise ValueError(f"{path}: {what}; name the image stack with hdf5.images")
    return stacks[0]


def _text(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [v.decode("utf-8", "replace").strip() if isinstance(v, bytes) else str(v).strip()
              for v in values.tolist()]
    return out


def _column(values: np.ndarray, named: bool) -> tuple[np.ndarray, str] | None:
    kind = values.dtype.kind
    if kind == "b":
        return values.astype(bool), "bool"
    if kind in "iu":
        return values.astype(np.int64), "int64"
    if kind == "f":
        return values.astype(np.float64), "float64"
    return (_text(values), "str") if named else None


def _read_columns(datasets: dict[str, Any], count: int, opts, path: str, skip: set[str]
                  ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    if opts.columns is not None:
        wanted = [name.strip("/") for name in opts.columns]
        for name in wanted:
            if name not in datasets:
                raise ValueError(f"hdf5.columns: {path} has no dataset {name!r}")
            if datasets[name].shape != (count,):
                raise ValueError(f"hdf5.columns: {path}:{name} has shape "
                                 f"{datasets[name].shape}, not one value per image ({count})")
    else:
        wanted = [name for name, d in datasets.items()
                  if name not in skip and d.shape == (count,)]
    rename = dict(opts.rename)
    values: dict[str, np.ndarray] = {}
    types: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name in wanted:
        found = _column(np.asarray(datasets[name][()]), named=opts.columns is not None)
        if found is None:
            continue  # default: numeric datasets only
        short = name.rsplit("/", 1)[-1]
        store_name = safe_column(rename.pop(short if short in rename else name, short), path)
        if store_name in values:
            raise ValueError(f"{path}: datasets {sources[store_name]!r} and {name!r} would "
                             f"both be column {store_name!r}; rename one with hdf5.rename")
        values[store_name], types[store_name] = found
        sources[store_name] = name
    if rename:
        raise ValueError(f"hdf5.rename: {path} has no kept column {', '.join(rename)} "
                         f"(kept: {', '.join(values) or 'none'})")
    return values, types


def _labels(codes: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(label text, whether the code has a name) per record."""
    integral = np.isfinite(codes) & (np.mod(codes, 1) == 0) if codes.dtype.kind == "f" \
        else np.ones(len(codes), dtype=bool)
    safe = np.where(integral, codes, -1).astype(np.int64)
    named = integral & (safe >= 0) & (safe < len(names))
    labels = np.empty(len(codes), dtype=object)
    labels[:] = [names[c] if ok else "" for c, ok in zip(safe.tolist(), named.tolist(),
                                                         strict=True)]
    return labels, named


def list_records(cfg: IngestConfig) -> Listing:
    opts = cfg.hdf5
    with _open(cfg.source) as handle:
        datasets = _datasets(handle)
        image_name = _image_dataset(datasets, opts.images, cfg.source)
        stack = datasets[image_name]
        where = f"{cfg.source}:{image_name}"
        if stack.dtype.kind not in "uif":
            raise ValueError(f"{where}: images of dtype {stack.dtype} are not numbers")
        layout, channels = stack_layout(stack.shape, opts.layout, where, "hdf5.layout")
        check_uint8_bands(stack.dtype, channels, where)
        count, dtype_in, shape_in = stack.shape[0], stack.dtype, stack.shape[1:]
        if opts.ids is not None:
            id_name = opts.ids.strip("/")
            if id_name not in datasets or datasets[id_name].shape != (count,):
                raise ValueError(f"hdf5.ids: {cfg.source} has no dataset {opts.ids!r} of "
                                 f"{count} values (one per image)")
            raw = np.asarray(datasets[id_name][()])
            all_ids = list(_text(raw)) if raw.dtype.kind in "SOU" else id_strings(raw)
        else:
            id_name, all_ids = None, [str(i) for i in range(count)]
        columns, types = _read_columns(datasets, count, opts, cfg.source,
                                       skip={image_name, id_name})
    labels = named = None
    if opts.label_column is not None:
        if opts.label_column not in columns or types[opts.label_column] == "str":
            raise ValueError(f"hdf5.label_column: {opts.label_column!r} is not a kept numeric "
                             f"column of {cfg.source} (kept: {', '.join(columns) or 'none'})")
        if "label" in columns:
            raise ValueError(f"hdf5.label_column: {cfg.source} already has a 'label' "
                             "dataset; rename it with hdf5.rename")
        labels, named = _labels(columns[opts.label_column], opts.label_names)
        columns["label"], types["label"] = labels, "str"

    def refuse(row: int, record_id: str, source: str) -> Reject | None:
        if named is None or named[row]:
            return None
        code = columns[opts.label_column][row]
        return Reject(source, f"bad_label: {opts.label_column}={code} has no name in "
                              f"hdf5.label_names ({len(opts.label_names)} names, codes "
                              f"0-{len(opts.label_names) - 1})", record_id)

    rows, kept_ids, sources, rejects = keep_rows(all_ids, cfg.source, refuse)
    uint8 = is_uint8(dtype_in)
    notes: dict[str, Any] = {"image_dataset": image_name, "image_dtype_in": str(dtype_in),
                             "image_shape_in": list(shape_in), "layout": layout}
    if not uint8:
        notes["flux"] = cfg.flux
    keep = np.asarray(rows, dtype=np.int64)
    return Listing(kind="hdf5", ids=kept_ids, sources=sources,
                   dtype="uint8" if uint8 else "float32", channels=3 if uint8 else channels,
                   column_types=types, columns={k: v[keep] for k, v in columns.items()},
                   rejects=rejects, notes=notes, inputs=[cfg.source],
                   payload={"rows": rows, "layout": layout, "images": image_name})


class Reader:
    """Decodes records in listing order a slice of rows at a time (see the docstring)."""

    def __init__(self, cfg: IngestConfig, listing: Listing) -> None:
        self.cfg = cfg
        self.listing = listing
        self.rows: list[int] = listing.payload["rows"]
        self._handle = None
        self._cached: tuple[int, np.ndarray] | None = None  # (first row, rows read)

    def _row(self, row: int) -> np.ndarray:
        if self._cached is not None:
            first, block = self._cached
            if first <= row < first + len(block):
                return block[row - first]
        if self._handle is None:
            self._handle = _open(self.cfg.source)
        stack = self._handle[self.listing.payload["images"]]
        stop = min(stack.shape[0], row + _READ_ROWS)
        try:
            self._cached = (row, np.asarray(stack[row:stop]))
        except DECODE_ERRORS:
            # A damaged chunk somewhere in the slice: read this row alone, so that only
            # the rows of that chunk are set aside, not their neighbours.
            self._cached = None
            return np.asarray(stack[row])
        return self._cached[1][0]

    def decode(self, index: int) -> Decoded:
        payload = self.listing.payload
        image = bands_first(self._row(self.rows[index]), payload["layout"])
        array, side = preprocess_array(image, uint8=self.listing.dtype == "uint8",
                                       channels=self.listing.channels, size=self.cfg.size,
                                       flux=self.cfg.flux)
        return Decoded(array, side)
