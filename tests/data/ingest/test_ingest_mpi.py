"""Real mpiexec: the store is the same for 1 and 2 ranks, and after a kill -9 and a rerun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_helpers import galaxysd_folder, truncate

from hpc.store import open_store, staging_path

pytestmark = pytest.mark.mpi
WORKER = str(Path(__file__).with_name("ingest_worker.py"))  # `galaxy-hpc`, ingest only


def ingest_cmd(source, out, *extra):
    return [sys.executable, WORKER, "ingest", str(source), "--out", str(out), "--size", "32",
            "--shard-size", "2", "--json", *extra]


def run(cmd, cwd, expect=3) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd,
                          check=False)
    assert done.returncode == expect, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def folder(tmp_path):
    ids = galaxysd_folder(tmp_path / "img", 20)
    truncate(tmp_path / "img" / "g003.jpg")  # block 1 (rank 1); g008: block 4 (rank 0)
    (tmp_path / "img" / "g008.jpg").write_bytes(b"not a jpeg")
    return tmp_path / "img", ids


def test_one_and_two_ranks_give_the_same_store(mpiexec, tmp_path, folder):
    source, _ = folder
    one = run(ingest_cmd(source, tmp_path / "one.zarr"), tmp_path)
    two = run([mpiexec, "-n", "2", *ingest_cmd(source, tmp_path / "two.h5", "--format",
                                               "hdf5")], tmp_path)
    assert (one["num_ranks"], two["num_ranks"]) == (1, 2)
    assert one["checksum"] == two["checksum"] and two["num_ingested"] == 18
    assert (tmp_path / "one.zarr.rejects.csv").read_text() == \
        (tmp_path / "two.h5.rejects.csv").read_text()
    open_store(tmp_path / "two.h5").verify()


def test_killed_run_resumes_to_the_same_store(mpiexec, tmp_path, folder):
    source, ids = folder
    clean = run(ingest_cmd(source, tmp_path / "clean.zarr"), tmp_path)
    # Record 14 starts block 7, which is rank 1's (blocks 1, 3, 5, 7, 9). A FIFO in its
    # place holds rank 1 in open() until a writer appears, so the kill lands at a known
    # point: rank 0 has written all its blocks (0, 2, 4, 6, 8), rank 1 blocks 1, 3, 5.
    image = source / f"{ids[14]}.jpg"
    shutil.move(image, tmp_path / "aside.jpg")
    os.mkfifo(image)
    out = tmp_path / "killed.zarr"
    job = subprocess.Popen([mpiexec, "-n", "2", *ingest_cmd(source, out)],
                           cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        parts = staging_path(out)
        expected = {f"part-{b:08d}" for b in (0, 1, 2, 3, 4, 5, 6, 8)}
        deadline = time.time() + 120
        while not (parts.is_dir() and expected <= set(os.listdir(parts))):
            assert time.time() < deadline and job.poll() is None, "ingest never reached block 7"
            time.sleep(0.05)
        time.sleep(0.2)  # let rank 0 settle into its wait for rank 1
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    assert not out.exists() and f"part-{7:08d}" not in os.listdir(parts)
    os.unlink(image)
    shutil.move(tmp_path / "aside.jpg", image)
    resumed = run([mpiexec, "-n", "2", *ingest_cmd(source, out)], tmp_path)
    assert resumed["blocks_resumed"] == 8 and resumed["blocks_total"] == 10
    assert resumed["checksum"] == clean["checksum"] and resumed["num_ingested"] == 18
    assert (tmp_path / "killed.zarr.rejects.csv").read_text() == \
        (tmp_path / "clean.zarr.rejects.csv").read_text()
    assert not parts.exists()
