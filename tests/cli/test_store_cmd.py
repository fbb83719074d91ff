"""`galaxy-hpc store info`: human text, --json, and one-line errors."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from galaxy_hpc.cli.main import main
from galaxy_hpc.cli.store_cmd import human_bytes
from hpc.store import StoreSpec, create_store, finalize_store

ATTRS = {
    "command": "galaxy-hpc synth configs/synth.yaml",
    "sources": [f"s{i}.fits" for i in range(9)],
    "version": "0.1.0",
}


def make_store(path, backend="zarr", finalize=True):
    spec = StoreSpec(
        image_shape=(3, 16, 16),
        columns={"id": "str", "redshift": "float64"},
        shard_size=4,
        backend=backend,
    )
    writer = create_store(path, spec, num_items=10, attrs=ATTRS)
    for shard in writer.pending_shards()[: None if finalize else 1]:
        start, stop = writer.shard_bounds(shard)
        writer.write_shard(
            shard,
            np.full((stop - start, 3, 16, 16), shard, np.uint8),
            {
                "id": [f"g{i}" for i in range(start, stop)],
                "redshift": np.linspace(0, 1, stop - start),
            },
        )
    return finalize_store(path) if finalize else None


@pytest.mark.parametrize("backend, name", [("zarr", "cat.zarr"), ("hdf5", "cat.h5")])
def test_info_text(tmp_path, capsys, backend, name):
    checksum = make_store(tmp_path / name, backend)
    assert main(["store", "info", str(tmp_path / name)]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / name} ({backend}, " in out and " on disk)" in out
    assert "10 images 3x16x16 uint8" in out
    assert "3 x 4 images" in out
    assert "id: str, redshift: float64" in out
    assert checksum in out
    assert "command: galaxy-hpc synth configs/synth.yaml" in out
    assert 'sources: [9 items] ["s0.fits", "s1.fits", "s2.fits", ...]' in out


def test_info_json(tmp_path, capsys):
    checksum = make_store(tmp_path / "cat.zarr")
    assert main(["store", "info", str(tmp_path / "cat.zarr"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (
        info["count"] == 10
        and info["image_shape"] == [3, 16, 16]
        and info["image_dtype"] == "uint8"
    )
    assert info["columns"] == {"id": "str", "redshift": "float64"} and info["backend"] == "zarr"
    assert info["shard_size"] == 4 and info["num_shards"] == 3 and info["checksum"] == checksum
    assert (
        info["size_on_disk_bytes"] > 0
        and info["attrs"] == ATTRS
        and info["path"] == str(tmp_path / "cat.zarr")
    )


@pytest.mark.parametrize(
    "target, reason",
    [
        ("missing.zarr", "no such store"),
        ("notes.txt", "not a store"),
        ("half.zarr", "not finalized; 2 of 3 shards are not written (shards 1-2)"),
    ],
)
def test_not_a_store_exits_1_with_one_line(tmp_path, capsys, target, reason):
    (tmp_path / "notes.txt").write_text("hello")
    make_store(tmp_path / "half.zarr", finalize=False)
    assert main(["store", "info", str(tmp_path / target)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1
    assert str(tmp_path / target) in lines[0] and reason in lines[0], captured.err


def test_arrays_that_are_not_a_store_get_the_ingest_that_makes_one(tmp_path, capsys,
                                                                  monkeypatch):
    """A Galaxy10-style HDF5 of arrays, and a folder, given where a store goes: the one
    error line names the `ingest` command, and that command, run as printed, makes a store
    `store info` reads with every galaxy."""
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:24, :24]
    blob = np.exp(-((yy - 12.0) ** 2 + (xx - 12.0) ** 2) / 18.0)
    images = (200 * blob[None, :, :, None] * rng.uniform(0.5, 1, (6, 1, 1, 3))
              + rng.uniform(0, 20, (6, 24, 24, 3))).astype(np.uint8)
    source = tmp_path / "galaxy10.h5"
    with h5py.File(source, "w") as file:
        file["images"] = images
        file["ans"] = np.arange(6) % 3
    assert main(["store", "info", str(source)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "not an hpc.store store" in lines[0], lines
    hinted = lines[0].split("make a store of it first: galaxy-hpc ")[1].split(" (docs/")[0]
    assert hinted == f"ingest {source} --out {tmp_path / 'galaxy10.zarr'}"
    assert main(hinted.split()) == 0
    capsys.readouterr()
    assert main(["store", "info", str(tmp_path / "galaxy10.zarr"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 6

    (tmp_path / "jpegs").mkdir()
    assert main(["store", "info", str(tmp_path / "jpegs")]) == 1
    err = capsys.readouterr().err
    assert f"galaxy-hpc ingest {tmp_path / 'jpegs'} --out {tmp_path / 'jpegs.zarr'}" in err
    monkeypatch.chdir(tmp_path / "jpegs")
    assert main(["store", "info", "."]) == 1
    assert f"ingest {tmp_path / 'jpegs'} --out {tmp_path / 'jpegs.zarr'}" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["store", "info", str(tmp_path / "notes.txt")]) == 1
    assert "ingest" not in capsys.readouterr().err  # nothing ingest reads


def test_installed_command_exit_status(tmp_path, galaxy_hpc):
    run = subprocess.run(
        [galaxy_hpc, "store", "info", str(tmp_path / "nope.h5"), "--json"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and run.stdout == ""
    assert (
        run.stderr.strip()
        == f"galaxy-hpc store: error: {tmp_path / 'nope.h5'}: no such store (nothing at this path)"
    )


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 1023, 1536, 5 * 2**30)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "5.0 GiB",
    ]
