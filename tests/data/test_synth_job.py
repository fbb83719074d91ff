"""The synth job: a catalog of synthetic galaxies in a store, the same for any number of ranks,
and a killed run finishes where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from galaxy_hpc.cli.main import main
from galaxy_hpc.data.synth import VOTE_COLUMNS
from hpc.store import open_store, open_store_for_writing


def synth_cmd(galaxy_hpc, out, *extra):
    return [galaxy_hpc, "synth", "--n", "96", "--size", "32", "--seed", "5", "--shard-size", "16",
            "--out", str(out), "--json", *extra]


def test_store_holds_truth_votes_and_captions(tmp_path, capsys):
    out = tmp_path / "s.zarr"
    assert main(["synth", "--n", "20", "--size", "32", "--out", str(out), "--seed", "1",
                 "--shard-size", "8", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    store = open_store(out)
    assert len(store) == 20 and store.spec.image_shape == (3, 32, 32)
    assert store.spec.image_dtype == "uint8" and store.checksum == summary["checksum"]
    assert list(store.read_column("id")[:2]) == ["synth-1-0", "synth-1-1"]
    captions = store.read_column("caption")
    assert all(c.startswith("sdss") for c in captions)
    votes = np.stack([store.read_column(name) for name in VOTE_COLUMNS], axis=1)
    np.testing.assert_allclose(votes[:, :3].sum(axis=1), 1.0)  # Q1 answered by everyone
    assert store.read_column("log_stellar_mass").min() >= 9.0
    assert store.attrs["seed"] == 1 and "synth_config" in store.attrs


def test_float_output_and_hdf5(tmp_path, capsys):
    out = tmp_path / "s.h5"
    assert main(["synth", "--n", "10", "--size", "32", "--out", str(out), "--format", "hdf5",
                 "--float", "--no-captions"]) == 0
    store = open_store(out)
    assert store.spec.image_dtype == "float32" and "caption" not in store.columns
    flux = store.read_images(0, 10).sum(axis=(2, 3))  # per band
    assert np.corrcoef(flux[:, 1], store.read_column("flux_r"))[0, 1] > 0.9


def test_bad_arguments(capsys, tmp_path):
    assert main(["synth", "--n", "10"]) == 1
    assert "give --out STORE" in capsys.readouterr().err
    assert main(["synth", "--n", "0", "--out", str(tmp_path / "x.zarr")]) == 1
    assert "num_galaxies must be >= 1" in capsys.readouterr().err


@pytest.mark.mpi
def test_one_and_two_ranks_write_the_same_store(galaxy_hpc, mpiexec, tmp_path):
    one = subprocess.run(synth_cmd(galaxy_hpc, tmp_path / "one.zarr"), capture_output=True,
                         text=True, check=True, timeout=300)
    two = subprocess.run([mpiexec, "-n", "2", *synth_cmd(galaxy_hpc, tmp_path / "two.zarr")],
                         capture_output=True, text=True, check=True, timeout=300, cwd=tmp_path)
    first, second = json.loads(one.stdout), json.loads(two.stdout)
    assert second["num_ranks"] == 2 and first["checksum"] == second["checksum"]


HOLD_AFTER_ONE_SHARD = """
import os, sys, time
from pathlib import Path
from hpc.store import writer
write = writer.StoreWriter.write_shard
def write_then_hold(self, shard, *args, **kwargs):
    write(self, shard, *args, **kwargs)
    Path(os.environ["HOLD_DIR"], str(os.getpid())).touch()
    time.sleep(300)  # held here until the test kills the job; never writes a second shard
writer.StoreWriter.write_shard = write_then_hold
from galaxy_hpc.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.mpi
def test_killed_run_resumes_to_the_same_store(galaxy_hpc, mpiexec, tmp_path):
    """Each rank is held after its first shard (a shim around the writer), so the SIGKILL of
    the whole job lands at a known point, 2 of 6 shards written, however fast the machine."""
    import sys

    clean = json.loads(subprocess.run(synth_cmd(galaxy_hpc, tmp_path / "clean.zarr"),
                                      capture_output=True, text=True, check=True,
                                      timeout=300).stdout)
    out, held = tmp_path / "killed.zarr", tmp_path / "held"
    held.mkdir()
    job = subprocess.Popen([mpiexec, "-n", "2", sys.executable, "-c", HOLD_AFTER_ONE_SHARD,
                            *synth_cmd(galaxy_hpc, out)[1:]], cwd=tmp_path,
                           env={**os.environ, "HOLD_DIR": str(held)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.time() + 240
    try:
        while len(os.listdir(held)) < 2:  # both ranks wrote a shard and are held
            assert time.time() < deadline and job.poll() is None, "the ranks never got held"
            time.sleep(0.1)
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # mpiexec and its ranks, at once
        job.wait()
    ranks = [int(name) for name in os.listdir(held)]
    deadline = time.time() + 30
    while any(map(alive, ranks)) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, ranks)), "a rank outlived the kill of its job"
    assert len(open_store_for_writing(out).completed_shards()) == 2
    resumed = json.loads(subprocess.run(synth_cmd(galaxy_hpc, out), capture_output=True,
                                        text=True, check=True, timeout=300).stdout)
    assert resumed["shards_drawn_here"] == 4 and resumed["checksum"] == clean["checksum"]


def run_cli(galaxy_hpc, *argv, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([galaxy_hpc, *map(str, argv)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def small(out, *extra) -> list[str]:
    return ["synth", "--n", "24", "--size", "16", "--shard-size", "8", "--out", str(out),
            *extra]


def test_a_rerun_says_what_it_did_and_other_settings_are_refused(galaxy_hpc, tmp_path):
    out = tmp_path / "s.zarr"
    first = run_cli(galaxy_hpc, *small(out, "--seed", "1"))
    assert first.returncode == 0, first.stderr
    checksum = open_store(out).checksum
    assert first.stdout.startswith("wrote 24 synthetic galaxies") and checksum in first.stdout
    again = run_cli(galaxy_hpc, *small(out, "--seed", "1"))
    assert again.returncode == 0
    assert again.stdout.strip() == (f"{out} was already complete: 24 synthetic galaxies, "
                                    f"checksum {checksum}; nothing to do")
    # Another seed, another shape: refused with the differences and the real flag.
    for extra, differences in ((["--seed", "2"], "seed: 1 != 2"),
                               (["--seed", "1", "--size", "32", "--float"],
                                "galaxy.output: 'uint8' != 'float32'; galaxy.size: 16 != 32")):
        refused = run_cli(galaxy_hpc, *small(out, *extra))
        assert refused.returncode == 1 and refused.stdout == ""
        error = refused.stderr.strip()
        assert "\n" not in error and "Traceback" not in error, error
        assert "already holds a store of galaxy-hpc synth made from other inputs" in error
        assert differences in error and "--overwrite" in error and "overwrite=True" not in error
    assert open_store(out).checksum == checksum  # untouched
    # --overwrite starts over: the same bytes as a fresh store of seed 2.
    assert run_cli(galaxy_hpc, *small(tmp_path / "fresh.zarr", "--seed", "2")).returncode == 0
    replaced = run_cli(galaxy_hpc, *small(out, "--seed", "2", "--overwrite"))
    assert replaced.returncode == 0, replaced.stderr
    assert open_store(out).checksum == open_store(tmp_path / "fresh.zarr").checksum != checksum


def test_overwrite_deletes_only_a_store(galaxy_hpc, tmp_path):
    precious = tmp_path / "notes.zarr"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    done = run_cli(galaxy_hpc, *small(precious, "--overwrite"))
    assert done.returncode == 1 and "refusing to overwrite" in done.stderr
    assert (precious / "thesis.tex").read_text() == "years of work"


KILL_AFTER_TWO_SHARDS = """
import os, sys
from hpc.store import writer
write = writer.StoreWriter.write_shard
done = []
def write_then_die(self, shard, *args, **kwargs):
    write(self, shard, *args, **kwargs)
    done.append(shard)
    if len(done) == 2:
        os._exit(9)  # as SIGKILL would: no clean-up runs
writer.StoreWriter.write_shard = write_then_die
from galaxy_hpc.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("name", ["s.zarr", "s.h5"])
def test_a_resumed_run_names_the_shards_it_drew(galaxy_hpc, tmp_path, name):
    import sys

    out = tmp_path / name
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_TWO_SHARDS, *small(out)],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == 9
    # Half a store (of HDF5, only its shard folder) is another seed's all the same.
    refused = run_cli(galaxy_hpc, *small(out, "--seed", "3"))
    assert refused.returncode == 1 and "seed: 0 != 3" in refused.stderr
    (tmp_path / f".{name}.creating-0123456789ab").mkdir()  # as a kill mid-create leaves
    resumed = run_cli(galaxy_hpc, *small(out))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("resumed: drew shards 2 (1 of 3; the others were "
                                     "complete); wrote 24 synthetic galaxies")
    clean = tmp_path / f"clean{out.suffix}"
    assert run_cli(galaxy_hpc, *small(clean)).returncode == 0
    assert open_store(out).checksum == open_store(clean).checksum
    parts = {".zarr": [name], ".h5": [name, f"{name}.shards"]}[out.suffix]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("clean")) \
        == parts


def test_an_unwritable_output_is_one_line_before_any_work(galaxy_hpc, tmp_path):
    blocker = tmp_path / "afile"  # root writes anywhere; nothing makes a folder of a file
    blocker.write_text("")
    done = run_cli(galaxy_hpc, *small(blocker / "s.zarr"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"galaxy-hpc synth: error: cannot write the store {blocker / 's.zarr'}: {blocker} is "
        "a file, not a folder")
