"""Per-column unit and description: kept by the spec, written where plain zarr / h5py
users look (attributes of each column array), returned by Store, outside the checksum."""

from __future__ import annotations

import h5py
import pytest
import zarr
from store_helpers import make_items, make_spec, store_path, write_shards

from hpc.store import (
    StoreSpec,
    compact_staging,
    create_store,
    finalize_store,
    open_staging,
    open_store,
)

INFO = {
    "redshift": {"unit": "", "description": "cosmological redshift"},
    "mag": {"unit": "mag", "description": "r-band magnitude"},
    "id": {"description": "object id"},
}


def build(tmp_path, backend, column_info, name="store"):
    spec = make_spec(backend, column_info=column_info)
    images, columns = make_items(10)
    path = store_path(tmp_path, backend, name)
    write_shards(create_store(path, spec, num_items=10), images, columns)
    return path, finalize_store(path)


@pytest.mark.parametrize("backend", ["zarr", "hdf5"])
def test_unit_and_description_round_trip_and_plain_readers_see_them(tmp_path, backend):
    path, _ = build(tmp_path, backend, INFO)
    store = open_store(path)
    assert store.column_info("redshift") == {"unit": "", "description": "cosmological redshift"}
    assert store.column_info("id") == {"description": "object id"}
    assert store.column_info("n") == {}
    assert store.info()["column_info"]["mag"] == {"unit": "mag", "description": "r-band magnitude"}
    with pytest.raises(ValueError, match="no column 'nope'"):
        store.column_info("nope")
    if backend == "zarr":
        group = zarr.open_group(path, mode="r")
        attrs = {name: dict(group["columns"][name].attrs) for name in ("redshift", "id", "n")}
    else:
        with h5py.File(path, "r") as master:
            attrs = {name: dict(master["columns"][name].attrs) for name in ("redshift", "id", "n")}
    assert attrs == {
        "redshift": {"unit": "", "description": "cosmological redshift"},
        "id": {"description": "object id"},
        "n": {},
    }


def test_metadata_is_not_content(tmp_path):
    _, with_info = build(tmp_path, "zarr", INFO, name="a")
    _, without = build(tmp_path, "hdf5", {}, name="b")
    assert with_info == without


def test_staging_carries_it_into_the_compacted_store(tmp_path):
    spec = make_spec("hdf5", column_info=INFO)
    path = store_path(tmp_path, "hdf5")
    open_staging(path, spec).write_part(0, *make_items(5))
    compact_staging(path)
    finalize_store(path)
    assert open_store(path).column_info("mag")["unit"] == "mag"


def test_spec_normalises_and_validates():
    spec = make_spec(column_info={"mag": {"unit": "mag", "description": None}, "n": {}})
    assert spec.column_info == {"mag": {"unit": "mag"}}
    assert StoreSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="^column_info: 'z' is not one of the columns"):
        make_spec(column_info={"z": {"unit": ""}})
    with pytest.raises(ValueError, match="^column_info of 'mag' must be a dict with keys"):
        make_spec(column_info={"mag": {"units": "mag"}})
    with pytest.raises(ValueError, match="^column_info: unit of 'mag' must be a string"):
        make_spec(column_info={"mag": {"unit": 3}})


def test_differences_name_the_column_whose_info_changed():
    ours = make_spec(column_info=INFO)
    theirs = make_spec(column_info={**INFO, "mag": {"unit": "mag"}})
    assert ours.differences(theirs) == [
        "column_info of 'mag': {'unit': 'mag', 'description': 'r-band magnitude'} != "
        "{'unit': 'mag'}"
    ]
