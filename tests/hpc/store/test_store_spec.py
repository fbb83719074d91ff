"""StoreSpec validation: each user mistake names its field and what is allowed."""

from __future__ import annotations

import pytest

from hpc.store import StoreSpec, default_compression


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"image_shape": (3, 64)}, "image_shape"),
        ({"image_shape": (3, 0, 64)}, "image_shape"),
        ({"image_shape": (3, 64.0, 64)}, "image_shape"),
        ({"image_dtype": "int16"}, "image_dtype"),
        ({"columns": {"z": "float16"}}, "columns: dtype of 'z'"),
        ({"columns": {"a/b": "str"}}, "columns: name 'a/b'"),
        ({"columns": {"": "str"}}, "columns: name ''"),
        ({"shard_size": 0}, "shard_size"),
        ({"shard_size": True}, "shard_size"),
        ({"backend": "netcdf"}, "backend"),
        ({"compression": "lz4"}, "compression"),
        (
            {"backend": "hdf5", "compression": "zstd"},
            "compression must be one of gzip, none for backend 'hdf5'",
        ),
        ({"compression": "none", "compression_level": 3}, "compression_level"),
        ({"compression": "zstd", "compression_level": 40}, "compression_level"),
        ({"compression": "gzip", "compression_level": -1}, "compression_level"),
    ],
)
def test_bad_values_raise_value_error_naming_the_field(kwargs, field):
    values = {"image_shape": (3, 64, 64), **kwargs}
    with pytest.raises(ValueError, match=f"^{field}".replace("(", r"\(")):
        StoreSpec(**values)


def test_defaults_resolve_to_measured_choices():
    assert StoreSpec(image_shape=(3, 8, 8)).compression == "zstd"
    assert StoreSpec(image_shape=(3, 8, 8)).compression_level == 1
    assert StoreSpec(image_shape=(1, 8, 8), image_dtype="float32").compression == "none"
    assert StoreSpec(image_shape=(1, 8, 8), image_dtype="float32").compression_level is None
    assert StoreSpec(image_shape=(3, 8, 8), backend="hdf5").compression == "none"
    assert (
        StoreSpec(image_shape=(3, 8, 8), backend="hdf5", compression="gzip").compression_level == 1
    )
    assert default_compression("zarr", "uint8") == "zstd"


def test_round_trip_through_dict_and_differences():
    spec = StoreSpec(image_shape=[3, 8, 8], columns={"id": "str", "z": "float64"}, shard_size=7)
    assert spec.image_shape == (3, 8, 8)
    assert StoreSpec.from_dict(spec.to_dict()) == spec
    other = StoreSpec(image_shape=(3, 8, 8), columns={"id": "str"}, shard_size=7)
    assert spec.differences(other) == ["columns: {'id': 'str', 'z': 'float64'} != {'id': 'str'}"]
    with pytest.raises(ValueError, match="unknown store spec field.*shard"):
        StoreSpec.from_dict({**spec.to_dict(), "shard": 3})


def test_content_part_ignores_layout():
    a = StoreSpec(image_shape=(3, 8, 8), columns={"b": "str", "a": "bool"}, shard_size=7)
    b = StoreSpec(
        image_shape=(3, 8, 8),
        columns={"a": "bool", "b": "str"},
        shard_size=64,
        backend="hdf5",
        compression="gzip",
        compression_level=4,
    )
    assert a.content_dict() == b.content_dict()


def test_shard_bounds_last_shard_is_short():
    spec = StoreSpec(image_shape=(1, 2, 2), shard_size=4)
    assert spec.num_shards(10) == 3 and spec.num_shards(0) == 0
    assert [spec.shard_bounds(j, 10) for j in range(3)] == [(0, 4), (4, 8), (8, 10)]
