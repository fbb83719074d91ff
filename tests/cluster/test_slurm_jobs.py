"""Real jobs on the local Slurm cluster: training through sbatch and submitit with
preemption, and ingest with srun over two nodes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm
REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "train" / "sd_lora_tiny.yaml")


@pytest.fixture(scope="module")
def store(tmp_path_factory, galaxy_hpc):
    out = tmp_path_factory.mktemp("slurm-data") / "synth64.zarr"
    subprocess.run([galaxy_hpc, "synth", "--n", "96", "--size", "64", "--shard-size", "32",
                    "--out", str(out), "--json"], check=True, capture_output=True, timeout=300)
    return out


def job_state(job_id: str, env: dict) -> tuple[str, int]:
    show = subprocess.run(["scontrol", "show", "job", job_id], env=env, capture_output=True,
                          text=True).stdout
    state = re.search(r"JobState=(\w+)", show)
    restarts = re.search(r"Restarts=(\d+)", show)
    if state:
        return state.group(1), int(restarts.group(1)) if restarts else 0
    accounted = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State"],
                               env=env, capture_output=True, text=True).stdout.split()
    return (accounted[0] if accounted else "UNKNOWN"), -1


def wait_for(predicate, timeout_s: float, what: str, poll_s: float = 1.0, explain=None):
    """`explain()`, when given, adds what the job said to the timeout's message."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{explain()}" if explain else ""))


def job_logs(submitted) -> str:
    """The tail of a submitit job's stdout and stderr, and Slurm's state of it."""
    parts = []
    for name in ("stdout", "stderr"):
        path = getattr(submitted, name)
        parts.append(f"--- {name} {path}:\n" + (path.read_text()[-3000:] if path.exists() else
                                                  "(not written)"))
    show = subprocess.run(["scontrol", "show", "job", str(submitted.job_id)],
                          capture_output=True, text=True).stdout
    return "\n".join([*parts, "--- scontrol:", show[-1500:]])


def logged_steps(run_dir: Path) -> int:
    log = run_dir / "train_log.jsonl"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_sbatch_training_over_two_nodes_is_preempted_requeued_and_completes(
        local_slurm, store, tmp_path):
    from diffusers import StableDiffusionPipeline

    run_dir = tmp_path / "run"
    env = {**local_slurm, "GALAXY_HPC_HOME": str(REPO)}
    submitted = subprocess.run(
        ["sbatch", "--parsable", "-N2", "--ntasks-per-node=1", "--gpus-per-node=0",
         "--cpus-per-task=1", f"--output={tmp_path}/train-%j.out", f"--chdir={tmp_path}",
         str(REPO / "slurm" / "train_sd.sbatch"), TINY, f"data.store={store}",
         f"run.output_dir={run_dir}", "run.max_steps=30", "run.log_every=1",
         "run.checkpoint_every=1000", "model.method=full", "zero.stage=3"],
        env=env, capture_output=True, text=True, check=True)
    job_id = submitted.stdout.strip().split(";")[0]
    wait_for(lambda: logged_steps(run_dir) >= 3, 300, "the first training steps")
    subprocess.run(["scancel", "--signal=USR1", job_id], env=env, check=True)
    wait_for(lambda: job_state(job_id, env)[1] >= 1, 120, "the requeue")
    final = wait_for(lambda: (s := job_state(job_id, env))[0] in ("COMPLETED", "FAILED", "CANCELLED")
                     and s, 420, "the requeued job to finish", poll_s=3)
    log = Path(tmp_path / f"train-{job_id}.out").read_text()
    assert final[0] == "COMPLETED", log[-3000:]
    assert "received SIGUSR1" in log and f"requeueing Slurm job {job_id}" in log
    saved = int(re.search(r"preempted at step (\d+)/30", log).group(1))
    assert f"resumed from {run_dir}/checkpoints/checkpoint-{saved:08d} (step {saved})" in log
    assert "trained 30 steps (resumed from step" in log
    steps = [json.loads(line)["step"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 31))  # every step once, across both runs
    StableDiffusionPipeline.from_pretrained(run_dir / "pipeline")


def test_submitit_training_preempted_through_submitit_resumes(local_slurm, store, tmp_path,
                                                              monkeypatch):
    from galaxy_hpc.jobs import JobCall, load_job_config
    from hpc.launch import ClusterProfile, final_state, submit, wait

    monkeypatch.setenv("PATH", local_slurm["PATH"])
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")
    run_dir = tmp_path / "run"
    cfg = load_job_config("train", TINY, [f"data.store={store}", f"run.output_dir={run_dir}",
                                          "run.max_steps=25", "run.log_every=1",
                                          "run.checkpoint_every=1000"])
    profile = ClusterProfile(name="test", executor="slurm", partition="debug", nodes=2,
                             tasks_per_node=1, time_min=20, signal_delay_s=30,
                             log_dir=str(tmp_path / "submitit"))
    submitted = submit(JobCall("train", cfg), profile=profile, job_name="ghpc-train-preempt")
    # A cold start of 2 tasks (imports, DeepSpeed, the tiny SD) on a loaded 2-core machine
    # has taken over 5 minutes.
    wait_for(lambda: logged_steps(run_dir) >= 3, 480, "the first training steps",
             explain=lambda: job_logs(submitted))
    submitted.job._interrupt()  # submitit's preemption: SIGTERM then USR2 to the tasks
    result = wait(submitted)[0]
    assert result.ok and result.step == 25 and result.resumed_from is not None
    assert final_state(submitted) == "COMPLETED"
    log = submitted.stdout.read_text() + submitted.stderr.read_text()
    assert "received SIGUSR2" in log and "Requeued job" in log  # submitit's own requeue
    assert (run_dir / "lora" / "pytorch_lora_weights.safetensors").is_file()


def test_srun_ingest_over_two_nodes_matches_one_process(local_slurm, galaxy_hpc, tmp_path):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(folder / f"g{i:03d}.jpg")
        (folder / f"g{i:03d}.txt").write_text(f"sdss, galaxy {i}")
    (folder / "g999.jpg").write_bytes(b"not a jpeg")  # a reject on whichever rank reads it

    def ingest(out, launcher):
        done = subprocess.run([*launcher, galaxy_hpc, "ingest", str(folder), "--out", str(out),
                               "--size", "32", "--shard-size", "8", "--json"],
                              env=local_slurm, capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)
        assert done.returncode == 3, done.stderr[-2000:]  # finished, with a reject
        return json.loads(done.stdout.strip().splitlines()[-1])

    alone = ingest(tmp_path / "one.zarr", [])
    spread = ingest(tmp_path / "two.zarr", ["srun", "--mpi=pmi2", "-N2", "-n4"])
    assert spread["checksum"] == alone["checksum"]
    assert (spread["num_ranks"], spread["num_ingested"], spread["num_rejected"]) == (4, 40, 1)
    assert alone["num_ranks"] == 1
