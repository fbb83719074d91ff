"""Scripts from profiles on the local Slurm cluster: a shipped script submitted from outside
the checkout with galaxy-hpc off PATH, a printed script that cannot find galaxy-hpc, and
`galaxy-hpc submit` (submitit) asking Slurm for what the sbatch script of its profile asks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpc.launch import BatchJob, ClusterProfile, render_sbatch_script, submit, wait

pytestmark = pytest.mark.slurm
HERE = Path(__file__).parent
REPO = HERE.parents[1]
VENV_BIN = Path(sys.executable).parent


def without_galaxy_hpc(env: dict) -> dict:
    """The caller's environment with galaxy-hpc off PATH and no GALAXY_HPC_HOME."""
    path = [p for p in env["PATH"].split(os.pathsep)
            if p and not (Path(p) / "galaxy-hpc").exists()]
    env = {**env, "PATH": os.pathsep.join(path)}
    env.pop("GALAXY_HPC_HOME", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def sbatch_wait(script: Path, args: list[str], env: dict, cwd: Path) -> tuple[int, str]:
    out = cwd / "job-%j.out"
    run = subprocess.run(["sbatch", "--wait", "--parsable", f"--output={out}", str(script), *args],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    job_id = run.stdout.strip().split(";")[0]
    assert job_id.isdigit(), run.stderr
    return run.returncode, Path(str(out).replace("%j", job_id)).read_text()


def test_shipped_selftest_runs_when_submitted_from_any_directory(local_slurm, tmp_path):
    """`sbatch ~/galaxy-hpc/slurm/selftest.sbatch` from elsewhere, without an activated env:
    the script finds the checkout it was submitted from (Slurm's record of its path)."""
    if not (REPO / ".venv" / "bin" / "galaxy-hpc").exists():
        pytest.fail(f"{REPO}/.venv/bin/galaxy-hpc missing: run `make install` in the checkout")
    env = without_galaxy_hpc(local_slurm)
    assert subprocess.run(["bash", "-c", "command -v galaxy-hpc"], env=env).returncode != 0
    status, log = sbatch_wait(REPO / "slurm" / "selftest.sbatch", ["mpi=require"], env, tmp_path)
    assert status == 0, log
    assert f"galaxy-hpc: from {REPO}/.venv (not on PATH)" in log
    assert "on 2 node(s) [ghpc-n[1-2]]" in log
    assert "selftest OK: world_size=4 backend=gloo source=slurm" in log
    assert "MPI Allreduce: world_size=4 sum=10 (expected 10)" in log


def test_a_script_outside_any_checkout_says_how_to_find_galaxy_hpc(local_slurm, galaxy_hpc,
                                                                  tmp_path):
    script = tmp_path / "printed" / "selftest.sbatch"
    script.parent.mkdir()
    subprocess.run([galaxy_hpc, "sbatch", "selftest", "--cluster", "slurm", "--nodes", "1",
                    "--out", str(script)], env=local_slurm, check=True, capture_output=True)
    status, log = sbatch_wait(script, [], without_galaxy_hpc(local_slurm), tmp_path)
    assert status != 0
    assert (f"galaxy-hpc sbatch: error: galaxy-hpc is not on PATH and no .venv/bin/galaxy-hpc in: "
            f"{tmp_path};") in log
    # With the environment active at submission (sbatch exports it), the same script runs.
    status, log = sbatch_wait(script, [], local_slurm, tmp_path)
    assert status == 0 and "selftest OK: world_size=1" in log, log


def sbatch_lines(text: str) -> set[str]:
    return {line for line in text.splitlines() if line.startswith("#SBATCH")}


def test_submitit_asks_slurm_for_what_the_sbatch_script_asks(local_slurm, tmp_path, monkeypatch):
    """One profile, two ways of submitting: the #SBATCH options of submitit's submission file
    (its public job.paths) and of the rendered script are the same, apart from each one's
    log files; the site setup and the signal go to both."""
    monkeypatch.setenv("PYTHONPATH", f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("PATH", local_slurm["PATH"])
    from cluster_jobs import square_with_rank

    profile = ClusterProfile(name="test", executor="slurm", partition="debug", nodes=2,
                             tasks_per_node=1, time_min=7, preempt_signal="USR1",
                             signal_delay_s=40, setup=["echo site-setup-ran"],
                             env={"GHPC_SITE": "a b"}, log_dir=str(tmp_path / "submitit"))
    submitted = submit(square_with_rank, 6, profile=profile, job_name="ghpc-agree")
    assert wait(submitted, poll_s=1)[0] == (36, "0")
    submission = submitted.job.paths.submission_file.read_text()
    script = render_sbatch_script(profile, BatchJob("ghpc-agree", ("selftest",)))
    own_logs = ("#SBATCH --output", "#SBATCH --error", "#SBATCH --open-mode", "#SBATCH --wckey")
    shared = {line for line in sbatch_lines(submission) if not line.startswith(own_logs)}
    assert shared == {line for line in sbatch_lines(script) if not line.startswith(own_logs)}
    assert {"#SBATCH --signal=USR1@40", "#SBATCH --nodes=2", "#SBATCH --time=00:07:00",
            "#SBATCH --partition=debug", "#SBATCH --requeue"} <= shared
    for line in ("echo site-setup-ran", "export GHPC_SITE='a b'"):
        assert line in submission.splitlines() and line in script.splitlines()
    assert "export SUBMITIT_PREEMPT_SIGNAL=USR1" in submission.splitlines()
    assert "site-setup-ran" in submitted.stdout.read_text()  # the batch script's log


def test_serve_script_runs_a_server_on_a_node_and_prints_the_tunnel(local_slurm, galaxy_hpc,
                                                                    tmp_path):
    """`galaxy-hpc sbatch serve --cluster slurm` (the shipped serve.sbatch's recipe on the
    local profile, whose nodes have no GPU): the job runs the server on the node's
    127.0.0.1 at $GHPC_SERVE_PORT, its log gives the ssh tunnel, and the API answers there
    until scancel."""
    import json
    import time
    import urllib.request

    from support.ports import free_port
    from support.stores import write_synth_store

    store = write_synth_store(tmp_path / "real.zarr", num_galaxies=8, seed=1, shard_size=8,
                              size=32)
    script = tmp_path / "serve.sbatch"
    subprocess.run([galaxy_hpc, "sbatch", "serve", "--cluster", "slurm", "--tasks-per-node", "4",
                    "--out", str(script)], env=local_slurm, check=True, capture_output=True)
    text = script.read_text()
    assert "#SBATCH --ntasks-per-node=1" in text and "#SBATCH --nodes=1" in text
    port = free_port()
    env = {**local_slurm, "GHPC_SERVE_PORT": str(port)}
    env.pop("USER", None)  # as in batch environments that do not set it
    log = tmp_path / "serve-%j.out"
    queued = subprocess.run(["sbatch", "--parsable", f"--output={log}", str(script),
                             "--store", f"real={store}"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    job_id = queued.stdout.strip().split(";")[0]
    assert job_id.isdigit(), queued.stderr
    log = Path(str(log).replace("%j", job_id))
    try:
        health, deadline = None, time.monotonic() + 300
        while health is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    health = json.loads(r.read())
            except OSError:
                time.sleep(2)
        printed = log.read_text() if log.exists() else ""
        assert health is not None, printed[-3000:]
        assert health["ok"] and health["stores"] == ["real"]
        node = next(line.split()[3].split(":")[0] for line in printed.splitlines()
                    if line.startswith("galaxy-hpc serve: on "))
        assert node  # the node's host name (this machine's, for the local cluster's nodes)
        assert f"ssh -N -L {port}:localhost:{port} -J " in printed and f"@{node}" in printed
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stores/real/items/0",
                                    timeout=30) as r:
            assert r.status == 200 and json.loads(r.read())
    finally:
        subprocess.run(["scancel", job_id], env=env, check=False)
        for _ in range(60):  # gone from the queue: the port is free again
            listed = subprocess.run(["squeue", "-h", "-j", job_id], env=env,
                                    capture_output=True, text=True)
            if not listed.stdout.strip():
                break
            time.sleep(1)
