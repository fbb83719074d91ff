"""`galaxy-hpc store verify`: an intact store, a damaged one (one line per damage, --json,
--limit), the outcome recorded for `store info`, 2 MPI ranks giving the list of one, and
a renamed HDF5 store relinked for plain h5py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from galaxy_hpc.cli.main import main
from hpc.store import StoreSpec, create_store, finalize_store, open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
from damage_kit import flip_byte, shard_file  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def make_store(path: Path, num_items: int = 40, shard_size: int = 8) -> np.ndarray:
    backend = "zarr" if path.suffix == ".zarr" else "hdf5"
    spec = StoreSpec(image_shape=(1, 8, 8), columns={"z": "float64"}, shard_size=shard_size,
                     backend=backend)
    images = np.random.default_rng(1).integers(1, 255, (num_items, 1, 8, 8), dtype=np.uint8)
    writer = create_store(path, spec, num_items=num_items)
    for shard in range(writer.num_shards):
        a, b = writer.shard_bounds(shard)
        writer.write_shard(shard, images[a:b], {"z": np.arange(a, b) / 10})
    finalize_store(path)
    return images


@pytest.mark.parametrize("name", ["cat.zarr", "cat.h5"])
def test_an_intact_store_verifies_and_info_says_so(tmp_path, capsys, name):
    path = tmp_path / name
    make_store(path)
    assert main(["store", "info", str(path)]) == 0
    assert "verified  not since it was written" in capsys.readouterr().out
    assert main(["store", "verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "verified every item matches its digest; digests match the checksum" in out
    assert "40 items, 5 shards; 1 rank(s)" in out
    assert main(["store", "info", str(path), "--json"]) == 0
    state = json.loads(capsys.readouterr().out)["verification"]
    assert state["verified"] and state["ok"] and state["num_damaged_items"] == 0


def damage_two_shards(path: Path) -> None:
    """Shard 0 (rank 0 of 2) loses its file; item 11 (shard 1, rank 1) a byte."""
    from damage_kit import chunk_span

    offset, size = chunk_span(path, 3, shard=1)
    flip_byte(shard_file(path, 1), offset + size // 2)
    shard_file(path, 0).unlink()


def test_a_damaged_store_lists_each_damage_and_info_remembers(tmp_path, capsys):
    path = tmp_path / "cat.zarr"
    make_store(path)
    damage_two_shards(path)
    assert main(["store", "verify", str(path)]) == 1
    captured = capsys.readouterr()
    assert "damaged  9 of 40 items" in captured.out
    assert "  items 0..7: images/c/0/0/0/0: is missing" in captured.out
    assert "  item 11: images/c/1/0/0/0: fails its crc32c check" in captured.out
    assert captured.err.strip() == (f"galaxy-hpc store: error: {path} is damaged: 9 of 40 "
                                    "items; listed above")
    assert main(["store", "verify", str(path), "--json", "--limit", "1"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["num_damaged_items"] == 9 and len(report["damaged"]) == 1
    assert report["num_damage_records_left_out"] == 1 and report["checksum_ok"]
    assert main(["store", "info", str(path)]) == 1  # the file check alone would stop first
    assert "images/c/0/0/0/0" in capsys.readouterr().err


def test_changed_digests_fail_the_checksum(tmp_path, capsys):
    path = tmp_path / "cat.zarr"
    make_store(path)
    flip_byte(path / "item_digests" / "c.2.0", 5)  # item 16's digest
    assert main(["store", "verify", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["checksum_ok"] and report["num_damaged_items"] == 1
    assert report["damaged"][0]["start"] == 16


@pytest.mark.mpi
@pytest.mark.parametrize("name", ["cat.zarr", "cat.h5"])
def test_two_ranks_list_what_one_lists(tmp_path, mpiexec, galaxy_hpc, name):
    path = tmp_path / name
    make_store(path)
    damage_two_shards(path)

    def verify(*launcher):
        done = subprocess.run([*launcher, galaxy_hpc, "store", "verify", str(path), "--json"],
                              capture_output=True, text=True, env=ENV, timeout=300,
                              cwd=tmp_path)
        assert done.returncode == 1, done.stderr[-2000:]
        assert done.stdout.count("\n") == 1, done.stdout  # rank 0 alone prints
        return json.loads(done.stdout)

    one, two = verify(), verify(mpiexec, "-n", "2")
    assert two["ranks"] == 2 and one["ranks"] == 1
    for key in ("damaged", "num_damaged_items", "checksum_ok", "ok"):
        assert one[key] == two[key], key
    assert [d["start"] for d in two["damaged"]] == [0, 11]


def test_verify_relinks_a_renamed_hdf5_store(tmp_path, capsys):
    images = make_store(tmp_path / "cat.h5")
    (tmp_path / "cat.h5").rename(tmp_path / "new.h5")
    (tmp_path / "cat.h5.shards").rename(tmp_path / "new.h5.shards")
    assert main(["store", "info", str(tmp_path / "new.h5")]) == 0
    assert "links     plain h5py reads images from cat.h5.shards/" in capsys.readouterr().out
    assert main(["store", "verify", str(tmp_path / "new.h5")]) == 0
    assert "relinked the master's images" in capsys.readouterr().out
    with h5py.File(tmp_path / "new.h5", "r") as master:
        np.testing.assert_array_equal(master["images"][:], images)
    assert open_store(tmp_path / "new.h5").stale_links() is None
