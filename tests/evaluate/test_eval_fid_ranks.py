"""The same FID/KID/IS/precision-recall on 1 and 2 ranks: under mpiexec, and under
`srun --mpi=pmi2` over two Slurm nodes as slurm/eval_fid.sbatch runs it."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

import eval_tiny_extractor

REPO = Path(__file__).resolve().parents[2]
METRICS = ("fid", "kid_mean", "kid_std", "isc_mean", "isc_std", "real_isc_mean", "precision",
           "recall")


def fid_args(galaxy_hpc, stores, *extra):
    return [galaxy_hpc, "evaluate", "fid", str(stores["real"]), str(stores["generated"]),
            "--extractor", eval_tiny_extractor.NAME, "--extractor-module", "eval_tiny_extractor",
            "--metrics", "fid,kid,isc,prc", "--kid-subset-size", "50", "--batch-size", "16",
            "--json", *extra]


def run_json(command, env, cwd):
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout  # rank 0 prints, the others keep to their log files
    return json.loads(lines[0])


def finished_state(job_id, env, timeout_s):
    """The job's final state, polled each second (sbatch --wait polls far less often)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        shown = subprocess.run(["scontrol", "show", "job", job_id], env=env,
                               capture_output=True, text=True).stdout
        state = re.search(r"JobState=(\w+)", shown)
        if state and state.group(1) not in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING"):
            return state.group(1)
        time.sleep(1)
    raise AssertionError(f"Slurm job {job_id} did not finish in {timeout_s} s")


def assert_same_numbers(a, b):
    for key in METRICS:
        assert a["metrics"][key] == pytest.approx(b["metrics"][key], rel=1e-9, abs=1e-12), key


@pytest.fixture(scope="module")
def one_rank(galaxy_hpc, stores):
    """The same command line, run as one process (a world of one rank) in this process."""
    from galaxy_hpc.cli.batch import load_batch_config, resolve_inputs
    from galaxy_hpc.cli.main import build_parser
    from galaxy_hpc.evaluate.config import FidConfig
    from galaxy_hpc.evaluate.fid import run_fid

    args = build_parser().parse_args(fid_args(galaxy_hpc, stores, "--no-cache")[1:])
    resolve_inputs(args, ("real", "generated"))
    return run_fid(load_batch_config(FidConfig, args), show_progress=False).to_dict()


@pytest.mark.mpi
def test_two_ranks_under_mpiexec_give_the_numbers_of_one(one_rank, mpiexec, galaxy_hpc, stores,
                                                         subprocess_env, tmp_path):
    two = run_json([mpiexec, "-n", "2", *fid_args(galaxy_hpc, stores, "--no-cache")],
                   subprocess_env, tmp_path)
    assert (one_rank["num_ranks"], two["num_ranks"]) == (1, 2)
    assert_same_numbers(one_rank, two)
    assert (tmp_path / "logs" / "ranks" / "rank-00001.log").is_file()


@pytest.mark.slurm
def test_sbatch_srun_over_two_nodes_gives_the_numbers_of_one(one_rank, local_slurm, galaxy_hpc, stores,
                                               subprocess_env, tmp_path):
    env = {**subprocess_env, "PATH": local_slurm["PATH"], "GALAXY_HPC_HOME": str(REPO),
           "GHPC_SRUN_MPI": "pmi2", "GHPC_EVAL_CACHE": str(tmp_path / "cache")}
    args = fid_args(galaxy_hpc, stores, "--out", str(tmp_path / "run"))[3:]
    submitted = subprocess.run(
        ["sbatch", "--parsable", "-N2", "--ntasks-per-node=1", "--gpus-per-node=0",
         "--cpus-per-task=1", f"--output={tmp_path}/eval-%j.out", f"--chdir={tmp_path}",
         str(REPO / "slurm" / "eval_fid.sbatch"), *args],
        env=env, capture_output=True, text=True, check=True)
    job_id = submitted.stdout.strip().split(";")[0]
    state = finished_state(job_id, env, timeout_s=420)
    log = (tmp_path / f"eval-{job_id}.out").read_text()
    assert state == "COMPLETED", log[-3000:]
    result = json.loads((tmp_path / "run" / "fid.json").read_text())
    assert result["num_ranks"] == 2 and result["cache"]["status"] == "miss"
    assert_same_numbers(one_rank, result)
    assert "srun --kill-on-bad-exit=1 --mpi=pmi2 galaxy-hpc evaluate fid" in log
