"""Resume, spec mismatch, incomplete stores and input validation."""

from __future__ import annotations

import numpy as np
import pytest
from store_helpers import make_items, make_spec, store_path, write_shards

from hpc.store import create_store, finalize_store, open_store, open_store_for_writing

BACKENDS = ["zarr", "hdf5"]


def record_of(path, backend, shard):
    if backend == "zarr":
        return path / "item_digests" / f"c.{shard}.0"
    return path.with_name(path.name + ".shards") / f"shard-{shard:06d}.done.json"


def fully_written(tmp_path, backend, num_items=12):
    """A store of `backend` with every shard written, not finalized: (path, writer, images,
    columns)."""
    path = store_path(tmp_path, backend)
    images, columns = make_items(num_items)
    writer = create_store(path, make_spec(backend), num_items=num_items)
    write_shards(writer, images, columns)
    return path, writer, images, columns


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_keeps_completed_shards(tmp_path, backend):
    path, spec = store_path(tmp_path, backend), make_spec(backend)
    images, columns = make_items(18)
    writer = create_store(path, spec, num_items=18, attrs={"run": 1})
    assert writer.pending_shards() == [0, 1, 2, 3, 4]
    write_shards(writer, images, columns, [0, 3])
    resumed = create_store(path, make_spec(backend), num_items=18, attrs={"run": 2})
    assert resumed.pending_shards() == [1, 2, 4] and resumed.completed_shards() == [0, 3]
    assert open_store_for_writing(path).pending_shards() == [1, 2, 4]
    write_shards(resumed, images, columns)
    finalize_store(path)
    store = open_store(path)
    assert store.attrs == {"run": 1}  # the creating run's provenance is kept
    np.testing.assert_array_equal(store.read_images(), images)


@pytest.mark.parametrize("backend", BACKENDS)
def test_different_spec_or_count_says_what_differs(tmp_path, backend):
    path = store_path(tmp_path, backend)
    create_store(path, make_spec(backend), num_items=18)
    with pytest.raises(
        ValueError, match=r"different spec.*shard_size: 4 != 8.*num_items: 18 != 20.*overwrite=True"
    ):
        create_store(path, make_spec(backend, shard_size=8), num_items=20)
    with pytest.raises(ValueError, match=r"image_dtype: 'uint8' != 'float32'"):
        create_store(path, make_spec(backend, dtype="float32"), num_items=18)
    fresh = create_store(path, make_spec(backend, shard_size=8), num_items=20, overwrite=True)
    assert fresh.pending_shards() == [0, 1, 2]
    other = "hdf5" if backend == "zarr" else "zarr"
    with pytest.raises(
        ValueError, match=f"is a {backend} store but the spec asks for backend '{other}'"
    ):
        create_store(path, make_spec(other), num_items=18)


def test_overwrite_refuses_what_is_not_a_store(tmp_path):
    folder = tmp_path / "precious.zarr"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        create_store(folder, make_spec(), num_items=4, overwrite=True)
    with pytest.raises(ValueError, match="exists and is not a store"):
        create_store(folder, make_spec(), num_items=4)
    assert (folder / "thesis.tex").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_finalize_and_open_name_missing_shards(tmp_path, backend):
    path = store_path(tmp_path, backend)
    images, columns = make_items(22)
    writer = create_store(path, make_spec(backend), num_items=22)
    write_shards(writer, images, columns, [0, 2])
    with pytest.raises(ValueError, match=r"cannot finalize .*4 of 6 shards .*\(shards 1, 3-5\)"):
        finalize_store(path)
    with pytest.raises(
        ValueError, match=r"not finalized; 4 of 6 shards are not written \(shards 1, 3-5\)"
    ):
        open_store(path)
    write_shards(writer, images, columns)
    with pytest.raises(ValueError, match="all shards are written, run finalize_store"):
        open_store(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_half_written_shard_is_pending(tmp_path, backend):
    path, writer, images, columns = fully_written(tmp_path, backend)
    record_of(path, backend, 1).unlink()  # as if killed after the data, before the record
    assert writer.pending_shards() == [1]
    with pytest.raises(ValueError, match=r"\(shards 1\)"):
        finalize_store(path)
    write_shards(writer, images, columns)
    assert writer.pending_shards() == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rewrite_killed_before_its_record_leaves_the_shard_pending(tmp_path, backend,
                                                                     monkeypatch):
    path, writer, images, columns = fully_written(tmp_path, backend)

    def killed(*args):
        raise KeyboardInterrupt  # as if the process died while writing the data

    monkeypatch.setattr(writer._backend, "_write_data", killed)
    with pytest.raises(KeyboardInterrupt):
        write_shards(writer, images, columns, [1])
    assert not record_of(path, backend, 1).exists()
    assert writer.pending_shards() == [1]  # the old record must not vouch for new data


@pytest.mark.parametrize("backend", BACKENDS)
def test_rewrite_and_finalize_are_idempotent(tmp_path, backend):
    path, writer, images, columns = fully_written(tmp_path, backend)
    write_shards(writer, images, columns, [1, 1])
    first = finalize_store(path, attrs={"a": 1})
    assert finalize_store(path, attrs={"b": 2}) == first
    store = open_store(path)
    assert store.attrs == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="is finalized"):
        open_store_for_writing(path).write_shard(0, images[:4], columns)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda im, co: (im[:3], co), r"shard 0 \(items 0..3\): expected 4 images, got 3"),
        (lambda im, co: (im[:, :2], co), r"images must have shape \(count, 3, 8, 8\)"),
        (
            lambda im, co: (im.astype("float64"), co),
            "images have dtype float64, the store holds uint8",
        ),
        (lambda im, co: (im, {k: v for k, v in co.items() if k != "mag"}), "missing column.* mag"),
        (
            lambda im, co: (im, {**co, "colour": co["mag"]}),
            r"unknown column.* colour \(not in the spec\)",
        ),
        (
            lambda im, co: (im, {**co, "n": co["redshift"]}),
            "column 'n' holds int64, got values of dtype float64",
        ),
        (lambda im, co: (im, {**co, "spiral": co["n"]}), "column 'spiral' holds bool"),
        (
            lambda im, co: (im, {**co, "redshift": co["redshift"][:2]}),
            "column 'redshift' must hold 4 values",
        ),
        (
            lambda im, co: (im, {**co, "id": ["a", None, "c", "d"]}),
            "column 'id' holds strings, item 1 is NoneType",
        ),
        (
            lambda im, co: (im, {**co, "id": ["a", "b\x00", "c", "d"]}),
            "column 'id' item 1 contains a NUL",
        ),
        (lambda im, co: (im, {**co, "caption": np.arange(4)}), "column 'caption' holds strings"),
    ],
)
def test_write_shard_validates_inputs(tmp_path, change, message):
    writer = create_store(store_path(tmp_path, "zarr"), make_spec(), num_items=8)
    images, columns = make_items(4)
    columns = {k: np.asarray(v) for k, v in columns.items()}
    bad_images, bad_columns = change(images, columns)
    with pytest.raises(ValueError, match=message):
        writer.write_shard(0, bad_images, bad_columns)
    assert writer.pending_shards() == [0, 1]


def test_write_shard_casts_only_losslessly(tmp_path):
    spec = make_spec(dtype="float32")
    writer = create_store(store_path(tmp_path, "zarr"), spec, num_items=4)
    images, columns = make_items(4)  # uint8 images -> float32 store, int32 -> int64: exact
    writer.write_shard(
        0,
        images,
        {
            **columns,
            "mag": columns["mag"].astype("float64"),
            "n": (columns["n"] % 1000).astype("int32"),
            "id": np.asarray(columns["id"]),
        },
    )
    with pytest.raises(ValueError, match="shard 1 is out of range"):
        writer.write_shard(1, images, columns)
    finalize_store(writer.path)
    np.testing.assert_array_equal(open_store(writer.path).read_images(), images.astype("float32"))


def test_attrs_must_be_json(tmp_path):
    with pytest.raises(ValueError, match="attrs must be JSON-serialisable"):
        create_store(
            store_path(tmp_path, "zarr"), make_spec(), num_items=4, attrs={"when": object()}
        )
    with pytest.raises(ValueError, match="num_items must be a non-negative integer"):
        create_store(store_path(tmp_path, "zarr"), make_spec(), num_items=-1)
