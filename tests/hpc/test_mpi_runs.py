"""Real MPI ranks (the mpich wheel's mpiexec): reductions and the distributed self-test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.mpi
HERE = Path(__file__).parent


@pytest.mark.parametrize("ranks", [1, 3])
def test_moments_allreduce_equals_numpy_on_all_data(mpiexec, tmp_path, ranks):
    out = tmp_path / "moments.json"
    subprocess.run([mpiexec, "-n", str(ranks), sys.executable, str(HERE / "mpi_moments_worker.py"),
                    str(out)], check=True, timeout=120)
    result = json.loads(out.read_text())
    data = np.random.default_rng(42).normal(size=(1000, 5)) * np.arange(1, 6)
    assert result["size"] == ranks and result["count"] == 1000
    np.testing.assert_allclose(result["mean"], data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(result["cov"], np.cov(data, rowvar=False), rtol=1e-10)
    ranks_sum = ranks * (ranks + 1) / 2
    assert result["pieces"] == (np.arange(30.0).reshape(5, 6) * ranks_sum).tolist()


def test_selftest_under_mpiexec(mpiexec, galaxy_hpc, tmp_path):
    run = subprocess.run([mpiexec, "-n", "2", galaxy_hpc, "selftest", "--json", "mpi=require"],
                         capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)  # only rank 0 prints
    assert result["ok"] and result["source"] == "mpi" and result["world_size"] == 2
    assert result["torch_sum"] == result["torch_expected"] == 3.0
    assert result["mpi_world_size"] == 2 and result["mpi_sum"] == 3.0
    assert (tmp_path / "logs" / "ranks" / "rank-00001.log").is_file()  # rank 1 kept off the terminal


def test_env_under_mpiexec(mpiexec, galaxy_hpc):
    run = subprocess.run([mpiexec, "-n", "3", galaxy_hpc, "env", "--json"], capture_output=True,
                         text=True, timeout=120, check=True)
    views = [json.loads(line) for line in run.stdout.splitlines()]
    assert sorted(v["rank"] for v in views) == [0, 1, 2]
    assert {v["world_size"] for v in views} == {3} and {v["source"] for v in views} == {"mpi"}
