"""The conditional GAN trained through slurm/train_gan.sbatch on the local Slurm cluster:
two nodes, one rank each, ZeRO-2; the job completes and its generator loads and draws."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slurm
REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "train" / "gan_tiny.yaml")


def job_state(job_id: str, env: dict) -> str:
    show = subprocess.run(["scontrol", "show", "job", job_id], env=env, capture_output=True,
                          text=True).stdout
    found = re.search(r"JobState=(\w+)", show)
    if found:
        return found.group(1)
    accounted = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State"],
                               env=env, capture_output=True, text=True).stdout.split()
    return accounted[0] if accounted else "UNKNOWN"


def test_sbatch_gan_training_over_two_nodes(local_slurm, tmp_path):
    from galaxy_hpc.data.synth.config import SynthConfig
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth
    from galaxy_hpc.models.gan.generator import load_generator

    store = tmp_path / "flux32.zarr"
    run_synth(SynthJobConfig(out=str(store), num_galaxies=64, seed=8, shard_size=32,
                             captions=False, galaxy=SynthConfig(size=32, output="float32")),
              progress=False)
    run_dir = tmp_path / "run"
    env = {**local_slurm, "GALAXY_HPC_HOME": str(REPO)}
    submitted = subprocess.run(
        ["sbatch", "--parsable", "-N2", "--ntasks-per-node=1", "--gpus-per-node=0",
         "--cpus-per-task=1", "--time=00:20:00", f"--output={tmp_path}/gan-%j.out",
         f"--chdir={tmp_path}", str(REPO / "slurm" / "train_gan.sbatch"), TINY,
         f"data.store={store}", f"run.output_dir={run_dir}", "run.max_steps=4",
         "run.log_every=1", "run.micro_batch_size=8", "run.num_samples=4",
         "model.generator_channels=[32,16,8]", "model.discriminator_channels=[8,16,32]",
         "model.consistency.every=2", "model.consistency.num_samples=32",
         "model.consistency.report_num_samples=32"],
        env=env, capture_output=True, text=True, check=True)
    job_id = submitted.stdout.strip().split(";")[0]
    deadline = time.time() + 900  # a first launch may JIT-build DeepSpeed's CPU comm op
    state = job_state(job_id, env)
    while state not in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"):
        assert time.time() < deadline, f"job {job_id} still {state}"
        time.sleep(3)
        state = job_state(job_id, env)
    log = (tmp_path / f"gan-{job_id}.out").read_text()
    assert state == "COMPLETED", log[-3000:]
    assert "srun --kill-on-bad-exit=1 galaxy-hpc train" in log and "trained 4 steps" in log
    rows = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and "consistency_flux" in rows[1]
    marker = json.loads((run_dir / "checkpoints" / "checkpoint-00000004" / "COMPLETE").read_text())
    assert marker["world_size"] == 2
    generator = load_generator(run_dir / "generator")
    images = generator.generate(np.array([[0.05, 10.0], [0.15, 11.0]]), seeds=[1, 2])
    assert images.shape == (2, 3, 32, 32) and np.isfinite(images).all()
