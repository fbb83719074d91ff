"""hpc.workqueue: every item handed out once; a slow rank takes fewer (MPI RMA and gloo store)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.ports import free_port

HERE = Path(__file__).parent


@pytest.mark.mpi
@pytest.mark.parametrize("launcher, ranks", [("mpiexec", 3), ("torchrun", 2)])
def test_items_are_claimed_once_and_fast_ranks_take_more(launcher, ranks, mpiexec, tmp_path):
    out = tmp_path / "claims.json"
    worker = str(HERE / "workqueue_worker.py")
    if launcher == "mpiexec":
        cmd = [mpiexec, "-n", str(ranks), sys.executable, worker, str(out)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks),
               "--master-port", str(free_port()), worker, str(out)]
    run = subprocess.run(cmd, timeout=180, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["kind"] == ("mpi" if launcher == "mpiexec" else "torch")
    claims = result["claims"]
    flat = sorted(i for rank_claims in claims for i in rank_claims)
    assert flat == list(range(60))  # each item exactly once
    assert len(claims[0]) < min(len(c) for c in claims[1:])  # the slow rank took fewer
    assert sorted(x for rank in result["second"] for x in rank) == ["a", "b", "c"]


def test_single_process_takes_everything():
    from hpc.comm import job_comm
    from hpc.workqueue import dynamic_items

    assert list(dynamic_items([3, 1, 2], job_comm())) == [3, 1, 2]
