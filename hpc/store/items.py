"""Check and normalise a batch of items (images + columns) against a spec.

Every write path (shards, staging parts) goes through `coerce_items`, so a wrong shape,
dtype or column name is reported the same way, naming what to change, before anything
touches the disk. Images are cast only where numpy calls it safe (uint8 -> float32);
columns too, except that float columns also take any int or float (a Python float list
for a float32 column is the common case, not a mistake).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from hpc.store.spec import StoreSpec

_NUMERIC_KINDS = {"float64": "fiu", "float32": "fiu", "int64": "iu", "bool": "b"}


def coerce_items(
    spec: StoreSpec,
    images: Any,
    columns: Mapping[str, Any] | None,
    expected_count: int | None = None,
    where: str = "items",
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Return C-contiguous native images of the spec dtype and one 1-D array per column
    (strings as an object array of `str`). Raises ValueError naming the problem."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != spec.image_shape:
        raise ValueError(
            f"{where}: images must have shape (count, {', '.join(map(str, spec.image_shape))}), "
            f"got {images.shape}"
        )
    target = np.dtype(spec.image_dtype)
    if images.dtype != target and not np.can_cast(images.dtype, target, "safe"):
        raise ValueError(
            f"{where}: images have dtype {images.dtype}, the store holds {target}; "
            f"convert them first (e.g. .astype('{target}')) if that loses nothing"
        )
    images = np.ascontiguousarray(images, dtype=target)
    count = images.shape[0]
    if expected_count is not None and count != expected_count:
        raise ValueError(f"{where}: expected {expected_count} images, got {count}")
    return images, coerce_columns(spec, columns or {}, count, where)


def coerce_columns(
    spec: StoreSpec, columns: Mapping[str, Any], count: int, where: str
) -> dict[str, np.ndarray]:
    if not isinstance(columns, Mapping):
        raise ValueError(
            f"{where}: columns must be a dict of name -> values, got {type(columns).__name__}"
        )
    missing = sorted(set(spec.columns) - set(columns))
    unknown = sorted(set(columns) - set(spec.columns))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(map(str, unknown))} (not in the spec)")
        raise ValueError(f"{where}: {'; '.join(parts)}")
    out = {}
    for name, dtype in spec.columns.items():
        values = columns[name]
        array = _string_column(values, count) if dtype == "str" else np.asarray(values)
        if array.ndim != 1 or array.shape[0] != count:
            raise ValueError(
                f"{where}: column {name!r} must hold {count} values, got shape {array.shape}"
            )
        if dtype == "str":
            _check_strings(array, name, where)
        else:
            array = _numeric_column(array, dtype, name, where)
        out[name] = array
    return out


def _string_column(values: Any, count: int) -> np.ndarray:
    if isinstance(values, (list, tuple)):  # not via np.asarray: 'U' arrays drop trailing NULs
        result = np.empty(len(values), dtype=object)
        for index, value in enumerate(values):
            result[index] = value
        return result
    array = np.asarray(values)
    if array.ndim == 1 and array.dtype.kind in "UTO":
        result = np.empty(array.shape, dtype=object)
        result[...] = [str(v) for v in array] if array.dtype.kind in "UT" else list(array)
        return result
    return array  # wrong kind: reported by _check_strings with the column name


def _check_strings(array: np.ndarray, name: str, where: str) -> None:
    if array.dtype != object:
        raise ValueError(
            f"{where}: column {name!r} holds strings, got values of dtype {array.dtype}"
        )
    for index, value in enumerate(array):
        if not isinstance(value, str):
            raise ValueError(
                f"{where}: column {name!r} holds strings, "
                f"item {index} is {type(value).__name__} {value!r}"
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"{where}: column {name!r} item {index} is not valid Unicode (lone surrogate)"
            ) from None
        if "\x00" in value:
            # HDF5 strings are C strings; refused in every backend so content never
            # depends on the backend chosen.
            raise ValueError(
                f"{where}: column {name!r} item {index} contains a NUL character; remove it"
            )


def _numeric_column(array: np.ndarray, dtype: str, name: str, where: str) -> np.ndarray:
    target = np.dtype(dtype)
    ok = array.dtype.kind in _NUMERIC_KINDS[dtype] and (
        target.kind == "f" or np.can_cast(array.dtype, target, "safe")
    )
    if not ok:
        raise ValueError(
            f"{where}: column {name!r} holds {dtype}, got values of dtype {array.dtype}"
        )
    return np.ascontiguousarray(array, dtype=target)


def empty_items(spec: StoreSpec) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if spec.keeps_jpeg:  # the items are JPEG files (bytes)
        images = np.empty(0, dtype=object)
    else:
        images = np.zeros((0, *spec.image_shape), dtype=spec.image_dtype)
    columns = {
        name: np.empty(0, dtype=object if dtype == "str" else dtype)
        for name, dtype in spec.columns.items()
    }
    return images, columns
