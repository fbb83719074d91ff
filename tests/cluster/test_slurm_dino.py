"""The DINOv2 regressor on the local Slurm cluster: a tiny training job through
slurm/train_dino.sbatch over two nodes, then `galaxy-hpc predict` under srun over two
nodes with MPI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm
REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "train" / "dino_full_tiny.yaml")


def test_sbatch_dino_training_then_srun_predict(local_slurm, galaxy_hpc, tmp_path):
    from astropy.table import Table

    store = tmp_path / "synth32.zarr"
    subprocess.run([galaxy_hpc, "synth", "--n", "64", "--size", "32", "--shard-size", "16",
                    "--out", str(store), "--json"], check=True, capture_output=True,
                   timeout=300)
    run_dir = tmp_path / "run"
    env = {**local_slurm, "GALAXY_HPC_HOME": str(REPO)}
    job = subprocess.run(
        ["sbatch", "--wait", "--parsable", "-N2", "--ntasks-per-node=1", "--gpus-per-node=0",
         "--cpus-per-task=1", f"--output={tmp_path}/train-%j.out", f"--chdir={tmp_path}",
         str(REPO / "slurm" / "train_dino.sbatch"), TINY, f"data.store={store}",
         f"run.output_dir={run_dir}", "run.max_steps=6", "run.log_every=1",
         "model.init_from=null",
         "model.tiny={hidden_size: 32, num_layers: 2, num_heads: 2, patch_size: 8}"],
        env=env, capture_output=True, text=True, timeout=600)
    job_id = job.stdout.strip().split(";")[0]
    log = (tmp_path / f"train-{job_id}.out").read_text()
    assert job.returncode == 0, log[-3000:]
    assert "trained 6 steps" in log and "held-out" in log
    marker = json.loads((run_dir / "checkpoints" / "checkpoint-00000006" / "COMPLETE")
                        .read_text())
    assert marker["world_size"] == 2
    assert (run_dir / "predictor" / "metrics.json").is_file()

    out = tmp_path / "predictions.fits"
    done = subprocess.run(["srun", "--mpi=pmi2", "-N2", "-n2", galaxy_hpc, "predict",
                           str(run_dir), str(store), "--out", str(out), "--json"],
                          env=local_slurm, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["num_ranks"] == 2 and summary["num_items"] == 64
    table = Table.read(out)
    assert len(table) == 64 and len([c for c in table.colnames if c.startswith("pred_")]) == 37
