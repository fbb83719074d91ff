"""Provenance names the command the user typed (issue #13, item 3).

A job sent with `galaxy-hpc submit` runs in a process submitit starts, whose argv is
submitit's `_submit.py FOLDER`; store attributes and the FITS PROVJSON header recorded
that. Jobs run here through the local executor, and what they wrote is read back with
zarr, h5py or astropy alone, in processes that never import galaxy_hpc. The local
executor also used to leave an empty folder literally named `%j` in the log folder.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

READ_ATTRS = {
    "zarr": """
import json, sys
import zarr
attrs = zarr.open_group(sys.argv[1], mode="r").attrs["hpc_store"]["attrs"]
print(json.dumps({"command": attrs["command"], "workdir": attrs["working_directory"],
                  "galaxy_hpc": "galaxy_hpc" in sys.modules}))
""",
    "h5py": """
import json, sys
import h5py
with h5py.File(sys.argv[1], "r") as f:
    attrs = json.loads(f.attrs["hpc_store"])["attrs"]
print(json.dumps({"command": attrs["command"], "workdir": attrs["working_directory"],
                  "galaxy_hpc": "galaxy_hpc" in sys.modules}))
""",
    "astropy": """
import json, sys
from astropy.io import fits
attrs = json.loads(fits.getheader(sys.argv[1], 1)["PROVJSON"])
print(json.dumps({"command": attrs["command"], "workdir": attrs["working_directory"],
                  "galaxy_hpc": "galaxy_hpc" in sys.modules}))
""",
}


def recorded_command(tool: str, path: Path) -> str:
    """The command the file records, as `tool` reads it, once its recorded working
    directory is checked to be the folder the command was typed in (path's)."""
    done = subprocess.run([sys.executable, "-c", READ_ATTRS[tool], str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert seen["galaxy_hpc"] is False
    assert Path(seen["workdir"]).resolve() == path.parent.resolve()
    return seen["command"]


def submit(galaxy_hpc, cwd: Path, *args: str) -> str:
    """Run `galaxy-hpc submit ... --wait` and return the command line as typed."""
    argv = ["submit", *args, "--cluster", "local", "--log-dir", "logs", "--wait"]
    done = subprocess.run([galaxy_hpc, *argv], capture_output=True, text=True, timeout=600,
                          cwd=cwd)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return shlex.join(["galaxy-hpc", *argv])


def no_literal_job_id_paths(root: Path) -> None:
    assert [str(p) for p in root.rglob("*%j*")] == []
    assert [p.name for p in (root / "logs").iterdir()], "no job log folder"


@pytest.mark.parametrize("name, tool, tasks", [("s.zarr", "zarr", "2"), ("s.h5", "h5py", "1")])
def test_submitted_synth_records_the_submit_command(galaxy_hpc, tmp_path, name, tool, tasks):
    typed = submit(galaxy_hpc, tmp_path, "synth", f"out={name}", "num_galaxies=8",
                   "galaxy.size=32", "shard_size=4", "--tasks-per-node", tasks)
    assert recorded_command(tool, tmp_path / name) == typed
    assert "_submit" not in typed
    no_literal_job_id_paths(tmp_path)


def test_submitted_generate_records_it_in_the_fits_header(galaxy_hpc, tmp_path):
    sys.path.insert(0, str(REPO / "tests" / "generate"))
    try:
        from tiny_models import write_tiny_gan
    finally:
        sys.path.pop(0)
    write_tiny_gan(tmp_path / "gan")
    (tmp_path / "zm.csv").write_text("id,redshift,log_stellar_mass\na,0.05,10.1\nb,0.1,10.6\n"
                                     "c,0.15,11.0\n")
    typed = submit(galaxy_hpc, tmp_path, "generate", "out=cat.zarr", "model.kind=gan",
                   "model.path=gan", "conditions.source=table", "conditions.path=zm.csv",
                   "runtime.cpu_threads=1")
    assert recorded_command("zarr", tmp_path / "cat.zarr") == typed
    assert recorded_command("astropy", tmp_path / "cat.fits") == typed
    no_literal_job_id_paths(tmp_path)


def unset_provenance_env(monkeypatch) -> None:
    """Unset for the test and restored after it, even when the test sets them (a plain
    delenv of an unset variable records nothing to restore)."""
    from hpc.provenance import COMMAND_ENV, WORKDIR_ENV

    for name in (COMMAND_ENV, WORKDIR_ENV):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def test_command_line_outermost_wins_and_is_restored(monkeypatch):
    from hpc.provenance import adopt_command, command_line, recording_command

    unset_provenance_env(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["/opt/bin/tool", "a b", "c"])
    assert command_line() == "tool 'a b' c"
    with recording_command("galaxy-hpc", ["synth", "--out", "x y.h5"]):
        assert command_line() == "galaxy-hpc synth --out 'x y.h5'"
        with recording_command("galaxy-hpc", ["inner"]):
            assert command_line() == "galaxy-hpc synth --out 'x y.h5'"
    assert command_line() == "tool 'a b' c"
    adopt_command("galaxy-hpc submit synth")
    assert command_line() == "galaxy-hpc submit synth"


def test_working_directory_is_the_typed_commands_folder(monkeypatch, tmp_path):
    """`ingest . --out x.zarr` recorded "." as its source: the folder the command ran in
    is what makes its relative paths mean something, and it follows the command into
    processes started elsewhere."""
    from hpc.provenance import (WORKDIR_ENV, adopt_command, command_record,
                                recording_command, working_directory)

    unset_provenance_env(monkeypatch)
    typed_in, elsewhere = tmp_path / "typed", tmp_path / "elsewhere"
    typed_in.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(typed_in)
    with recording_command("galaxy-hpc", ["ingest", ".", "--out", "g.zarr"]):
        monkeypatch.chdir(elsewhere)
        assert command_record() == {"command": "galaxy-hpc ingest . --out g.zarr",
                                    "working_directory": str(typed_in)}
    assert working_directory() == str(elsewhere)
    assert WORKDIR_ENV not in os.environ
    adopt_command("galaxy-hpc submit ingest", str(typed_in))
    assert working_directory() == str(typed_in)
