"""hpc.comm: the same collectives over MPI (mpiexec) and over gloo (torchrun)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.ports import free_port

from hpc.comm import MpiComm, job_comm, launched_by_mpi

HERE = Path(__file__).parent


@pytest.mark.mpi
@pytest.mark.parametrize("launcher", ["mpiexec", "torchrun"])
def test_collectives_agree_across_launchers(launcher, mpiexec, tmp_path):
    out = tmp_path / "out.json"
    worker = str(HERE / "comm_worker.py")
    if launcher == "mpiexec":
        cmd = [mpiexec, "-n", "2", sys.executable, worker, str(out)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-port", str(free_port()), worker, str(out)]
    run = subprocess.run(cmd, timeout=180, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["kind"] == ("mpi" if launcher == "mpiexec" else "torch")
    assert result["size"] == 2 and result["shared"] == {"plan": [0, 1, 2, 3, 4]}
    assert result["gathered"] == [["rank", 0], ["rank", 1]]
    assert result["summed"] == [4.0, 4.0] and result["counts"] == [3]
    assert result["count_dtype"] == "int64"
    # on_root: rank 0 alone works (twice), every rank gets its result, and its
    # ValueError is raised on every rank.
    ranks = result["per_rank"]
    assert [r["ran"] for r in ranks] == [[0, 0], []]
    assert [r["from_root"] for r in ranks] == ["measured on 0"] * 2
    assert [r["again"] for r in ranks] == [0, 0]
    assert [r["failure"] for r in ranks] == ["survey.zarr is damaged"] * 2


@pytest.mark.mpi
@pytest.mark.parametrize("launcher", ["mpiexec", "torchrun"])
def test_ranks_waiting_for_rank_0_sleep_instead_of_spinning(launcher, mpiexec, tmp_path):
    """MPICH busy-polls in a blocking broadcast: rank 1 used 2.0 s of CPU in a 2 s wait
    before MpiComm slept through it; a core held that way is taken from working ranks."""
    out, pause = tmp_path / "out.json", 2.0
    worker = str(HERE / "comm_wait_worker.py")
    if launcher == "mpiexec":
        cmd = [mpiexec, "-n", "2", sys.executable, worker, str(out), str(pause)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-port", str(free_port()), worker, str(out), str(pause)]
    run = subprocess.run(cmd, timeout=180, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    waiter = json.loads(out.read_text())[1]
    assert waiter["wall_s"] >= 0.9 * pause
    assert waiter["cpu_s"] < 0.15 * waiter["wall_s"], waiter


def test_single_process_is_an_mpi_world_of_one(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "PMI_RANK", "PMI_FD", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        monkeypatch.delenv(name, raising=False)
    comm = job_comm()
    assert isinstance(comm, MpiComm) and (comm.rank, comm.size) == (0, 1)
    assert comm.bcast("x") == "x" and comm.allgather(1) == [1]
    assert not launched_by_mpi({}) and launched_by_mpi({"PMI_RANK": "0"})
