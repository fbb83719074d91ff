"""Against a real Slurm cluster on this machine (two nodes, accounting): sbatch scripts,
srun, MPI under srun, and submitit round trip, job array and preemption with requeue."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from hpc.dist import master_port_for_job
from hpc.launch import ClusterProfile, submit, submit_array, wait

pytestmark = pytest.mark.slurm
HERE = Path(__file__).parent


def sacct_state(job_id: str, env: dict) -> str:
    run = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State"],
                         capture_output=True, text=True, env=env, check=True)
    return run.stdout.strip().splitlines()[0].split()[0] if run.stdout.strip() else ""


def test_sbatch_selftest_over_two_nodes(local_slurm, repo_root, tmp_path):
    out = tmp_path / "selftest-%j.out"
    env = {**local_slurm, "GHPC_RANK_LOG_DIR": str(tmp_path / "ranks")}
    run = subprocess.run(
        ["sbatch", "--wait", "--parsable", f"--output={out}", "slurm/selftest.sbatch",
         "configs/selftest.yaml", "mpi=require"],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    job_id = run.stdout.strip().split(";")[0]
    log = Path(str(out).replace("%j", job_id)).read_text()
    assert run.returncode == 0, log
    assert "selftest OK: world_size=4 backend=gloo source=slurm" in log
    assert f"master=ghpc-n1:{master_port_for_job(job_id)}" in log
    assert "torch.distributed all_reduce: sum=10 (expected 10)" in log
    assert "MPI Allreduce: world_size=4 sum=10 (expected 10)" in log
    assert "on 2 node(s) [ghpc-n[1-2]]" in log  # the script's banner: both nodes allocated
    assert sorted(p.name for p in (tmp_path / "ranks").iterdir()) == \
        ["rank-00001.log", "rank-00002.log", "rank-00003.log"]
    assert sacct_state(job_id, env) == "COMPLETED"


def test_sbatch_script_fails_cleanly_on_a_bad_config(local_slurm, repo_root, tmp_path):
    out = tmp_path / "bad-%j.out"
    run = subprocess.run(
        ["sbatch", "--wait", "--parsable", f"--output={out}", "-N1", "--ntasks-per-node=1",
         "slurm/selftest.sbatch", "configs/selftest.yaml", "num_elemnts=5"],
        cwd=repo_root, env=local_slurm, capture_output=True, text=True, timeout=300)
    job_id = run.stdout.strip().split(";")[0]
    log = Path(str(out).replace("%j", job_id)).read_text()
    assert run.returncode != 0
    assert "unknown key 'num_elemnts'" in log and "did you mean 'num_elements'" in log


def test_env_under_srun_two_nodes_four_tasks(local_slurm, galaxy_hpc):
    run = subprocess.run(["srun", "-N2", "-n4", galaxy_hpc, "env", "--json"], env=local_slurm,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    views = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert sorted(v["rank"] for v in views) == [0, 1, 2, 3]
    assert {v["world_size"] for v in views} == {4} and {v["source"] for v in views} == {"slurm"}
    assert {v["master_addr"] for v in views} == {"ghpc-n1"}
    assert len({v["master_port"] for v in views}) == 1
    assert {v["num_nodes"] for v in views} == {2}
    # Plain -n4 over 2 nodes packs 3+1 here: each node's local ranks are 0..k-1 with size k.
    for node in (0, 1):
        mine = [v for v in views if v["node_rank"] == node]
        assert mine and sorted(v["local_rank"] for v in mine) == list(range(len(mine)))
        assert {v["local_world_size"] for v in mine} == {len(mine)}


def test_mpi_world_under_srun_pmi2(local_slurm, repo_root):
    code = "from mpi4py import MPI; c = MPI.COMM_WORLD; print(c.rank, c.size)"
    run = subprocess.run(["srun", "--mpi=pmi2", "-N2", "-n4", str(Path(local_slurm["PATH"].split(os.pathsep)[0]) / "python"),
                          "-c", code], env=local_slurm, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    pairs = sorted(tuple(map(int, line.split())) for line in run.stdout.splitlines())
    assert pairs == [(0, 4), (1, 4), (2, 4), (3, 4)]


def slurm_profile(tmp_path: Path, **changes) -> ClusterProfile:
    values = dict(name="test", executor="slurm", partition="debug", time_min=10,
                  signal_delay_s=30, log_dir=str(tmp_path / "submitit"))
    values.update(changes)
    return ClusterProfile(**values)


@pytest.fixture
def job_imports(local_slurm, monkeypatch):
    """Job processes import the test callables from this folder."""
    monkeypatch.setenv("PYTHONPATH", f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("PATH", local_slurm["PATH"])


def test_submit_selftest_with_submitit(local_slurm, galaxy_hpc, tmp_path):
    run = subprocess.run(
        [galaxy_hpc, "submit", "selftest", "--cluster", "slurm", "--partition", "debug",
         "--nodes", "2", "--tasks-per-node", "2", "--time", "10", "--log-dir", str(tmp_path),
         "--wait", "--json"],
        env=local_slurm, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    info = json.loads(run.stdout.strip().splitlines()[-1])
    assert info["ok"] and info["num_tasks"] == 4 and info["state"] == "COMPLETED"
    assert re.fullmatch(r"\d+", info["job_id"]) and Path(info["stdout"]).is_file()


def test_submitit_job_array(job_imports, tmp_path):
    from cluster_jobs import square_with_rank

    jobs = submit_array(square_with_rank, [3, 4, 5], profile=slurm_profile(tmp_path),
                        job_name="ghpc-array", folder=tmp_path / "array")
    assert len({job.job_id.split("_")[0] for job in jobs}) == 1  # one array job, three tasks
    assert [wait(job, poll_s=1)[0] for job in jobs] == [(9, "0"), (16, "0"), (25, "0")]


def test_preempted_job_requeues_and_resumes_from_its_state(job_imports, local_slurm, tmp_path):
    from cluster_jobs import CountTo

    log = tmp_path / "count.jsonl"
    submitted = submit(CountTo(target=16, log_path=str(log), step_s=0.5),
                       profile=slurm_profile(tmp_path), job_name="ghpc-preempt",
                       folder=tmp_path / "preempt")
    job = submitted.job
    deadline = time.time() + 120
    while not (log.exists() and len(log.read_text().splitlines()) >= 4):
        assert time.time() < deadline, "job did not start counting"
        time.sleep(0.5)
    job._interrupt()  # submitit's own preemption: SIGTERM, then USR2 to the job
    requeued = _wait_for_requeue(job.job_id, local_slurm)
    assert requeued, "job was not requeued after preemption"
    # A requeued job waits ~2 min (BeginTime); release it now that it is pending.
    subprocess.run(["scontrol", "update", f"JobId={job.job_id}", "StartTime=now"],
                   env=local_slurm, check=True)
    result = job.result()
    assert result == {"done": 16, "checkpoints": 1}
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [row["done"] for row in rows] == list(range(1, 17))  # each step once, none repeated
    starts = sorted({row["run_start"] for row in rows})
    saved = int(log.with_suffix(".checkpoint").read_text())
    assert starts == [0, saved] and saved >= 4  # the second run resumed where the first stopped
    assert len({row["pid"] for row in rows}) == 2


def _wait_for_requeue(job_id: str, env: dict, timeout_s: float = 90) -> bool:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        show = subprocess.run(["scontrol", "show", "job", job_id], env=env, capture_output=True,
                              text=True).stdout
        restarts = re.search(r"Restarts=(\d+)", show)
        if restarts and int(restarts.group(1)) >= 1 and "JobState=PENDING" in show:
            time.sleep(3)  # updating StartTime at once after the requeue kills the job
            return True
        time.sleep(1)
    return False
