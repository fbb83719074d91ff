"""hpc.outputs: what `--overwrite` may delete and which hidden files count as a killed
writer's leftovers (the commands' own tests run them end to end)."""

from __future__ import annotations

import numpy as np
import pytest

from hpc.outputs import (
    OutputMismatch,
    check_fingerprint,
    differences,
    remove_leftovers,
    remove_output,
    store_attrs,
)
from hpc.store import StoreSpec, create_store


def small_store(path):
    spec = StoreSpec(image_shape=(1, 2, 2), image_dtype="uint8", columns={}, shard_size=2,
                     backend="hdf5" if path.suffix == ".h5" else "zarr")
    create_store(path, spec, num_items=2).write_shard(0, np.zeros((2, 1, 2, 2), np.uint8), {})
    return path


def test_differences_are_listed_by_dotted_key():
    stored = {"seed": 1, "galaxy": {"size": 16, "bands": ["g", "r"]}, "old": True}
    wanted = {"seed": 2, "galaxy": {"size": 16, "bands": ["g", "r", "i"]}}
    assert differences(stored, wanted) == [
        "galaxy.bands: ['g', 'r'] != ['g', 'r', 'i']", "old: True != None", "seed: 1 != 2"]
    check_fingerprint("x.zarr", wanted, wanted, what="a store")
    with pytest.raises(OutputMismatch, match=r"seed: 1 != 2.*pass --overwrite"):
        check_fingerprint("x.zarr", stored, wanted, what="a store")


@pytest.mark.parametrize("name", ["s.zarr", "s.h5"])
def test_leftovers_are_only_this_outputs_temporary_siblings(tmp_path, name):
    out = small_store(tmp_path / name)
    kept = [tmp_path / f".other{name}.creating-0123456789ab",  # another store's
            tmp_path / f".{name}.creating-notahexname1",  # not our pattern
            tmp_path / f".{name}.notes"]
    gone = [tmp_path / f".{name}.creating-0123456789ab", tmp_path / f".{name}.77.tmp"]
    if name.endswith(".h5"):
        gone.append(tmp_path / f".{name}.shards.creating-abcdefabcdef")
    for path in kept + gone:
        path.mkdir()
    inside = (out if out.is_dir() else tmp_path / f"{name}.shards") / ".x.tmp-00000000abcd"
    inside.write_text("")
    removed = remove_leftovers([out])
    assert sorted(removed) == sorted([*gone, inside])
    assert all(path.exists() for path in kept) and not any(p.exists() for p in gone)


def test_overwrite_removes_a_store_and_refuses_anything_else(tmp_path):
    out = small_store(tmp_path / "s.h5")  # unfinished: only its shard folder exists
    assert not out.exists() and store_attrs(out) == {}
    beside = tmp_path / "s.h5.rejects.csv"
    beside.write_text("x")
    remove_output(out, also=[beside, tmp_path / "absent.csv"])
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    folder = tmp_path / "mine.zarr"
    folder.mkdir()
    (folder / "thesis.tex").write_text("")
    with pytest.raises(OutputMismatch, match="refusing to overwrite"):
        remove_output(folder)
    assert (folder / "thesis.tex").exists()
