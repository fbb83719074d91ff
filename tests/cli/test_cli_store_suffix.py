"""A store's name says what it is (issue #13, item 2).

`galaxy-hpc synth --out x.h5` used to write a Zarr folder named x.h5, which h5py then
refused. Now .h5/.hdf5 mean HDF5 and .zarr means Zarr, for every command that creates a
store; a `--format` (or `format:`) that contradicts the name is a one-line error. The
store is checked with h5py alone, in a process that never imports galaxy_hpc.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

READ_WITH_H5PY = """
import json, sys
import h5py
with h5py.File(sys.argv[1], "r") as f:
    images = f["images"][:]
print(json.dumps({"shape": list(images.shape), "dtype": str(images.dtype),
                  "max": int(images.max()), "galaxy_hpc": "galaxy_hpc" in sys.modules}))
"""


def run(*args, cwd):
    return subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def test_synth_to_h5_without_format_is_hdf5_that_h5py_reads(galaxy_hpc, tmp_path):
    done = run(galaxy_hpc, "synth", "--n", "8", "--size", "32", "--out", "x.h5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "x.h5").is_file()
    read = run(sys.executable, "-c", READ_WITH_H5PY, tmp_path / "x.h5", cwd=tmp_path)
    assert read.returncode == 0, read.stderr[-3000:]
    seen = json.loads(read.stdout)
    assert seen == {"shape": [8, 3, 32, 32], "dtype": "uint8", "max": seen["max"],
                    "galaxy_hpc": False}
    assert seen["max"] > 0  # galaxies, not an empty dataset


@pytest.mark.parametrize("command", [
    ["synth", "--n", "8", "--size", "32", "--out", "x.zarr", "--format", "hdf5"],
    ["synth", "--n", "8", "--size", "32", "--out", "x.hdf5", "--format", "zarr"],
    ["synth", "synth.yaml", "out=x.zarr"],  # format: hdf5 in the file
    ["ingest", "images", "--out", "x.zarr", "--format", "hdf5"],
])
def test_a_format_that_contradicts_the_name_is_one_line_naming_both(galaxy_hpc, tmp_path,
                                                                    command):
    (tmp_path / "images").mkdir()
    (tmp_path / "synth.yaml").write_text("kind: synth\nout: x.h5\nformat: hdf5\n")
    done = run(galaxy_hpc, *command, cwd=tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    store = next(a.split("=")[-1] for a in command if ".zarr" in a or ".hdf5" in a)
    assert "clashes" in lines[0] and store in lines[0] and "format" in lines[0], lines[0]
    assert not (tmp_path / store).exists()


def test_generate_config_clash_and_default(tmp_path):
    from galaxy_hpc.jobs import load_job_config

    with pytest.raises(ValueError, match=r"format 'zarr' clashes .*cat\.h5"):
        load_job_config("generate", None, ["out=cat.h5", "format=zarr", "num_objects=4"])
    assert load_job_config("generate", None, ["out=cat.h5"]).format == "hdf5"
    assert load_job_config("generate", None, ["out=cat"]).format == "zarr"
    assert load_job_config("generate", None, ["out=cat", "format=hdf5"]).format == "hdf5"
