"""The suffix rule of store names (hpc.store.backend_for_path), and create_store keeping
to it for every caller, not only the commands."""

from __future__ import annotations

import pytest

from hpc.store import StoreSpec, backend_for_path, create_store


@pytest.mark.parametrize("path, requested, expected", [
    ("a.h5", None, "hdf5"), ("a.HDF5", None, "hdf5"), ("a.zarr", None, "zarr"),
    ("a", None, "zarr"), ("a", "hdf5", "hdf5"), ("a.h5", "hdf5", "hdf5"),
    ("runs/v1.2/store", "hdf5", "hdf5"), ("a.zarr", "zarr", "zarr"),
])
def test_the_suffix_or_the_format_or_the_default(path, requested, expected):
    assert backend_for_path(path, requested) == expected


@pytest.mark.parametrize("path, requested", [("a.h5", "zarr"), ("a.hdf5", "zarr"),
                                             ("a.zarr", "hdf5")])
def test_a_clash_is_one_line_naming_both(path, requested):
    with pytest.raises(ValueError, match=f"format '{requested}' clashes with the store "
                                         f"name '{path}'") as error:
        backend_for_path(path, requested)
    assert "\n" not in str(error.value)


def test_create_store_refuses_a_new_store_its_name_contradicts(tmp_path):
    spec = StoreSpec(image_shape=(1, 4, 4), backend="zarr")
    with pytest.raises(ValueError, match="clashes"):
        create_store(tmp_path / "x.h5", spec, num_items=2)
    assert not (tmp_path / "x.h5").exists()
    assert create_store(tmp_path / "x", spec, num_items=2).path == tmp_path / "x"
