"""Training Stable Diffusion (tiny, SD-1.5-shaped) through the real loop and DeepSpeed.

Single process and 2 MPI ranks (ZeRO-2 and ZeRO-3), LoRA and full fine-tuning; the
outputs are loaded with diffusers' own API and generate; resume is bit-exact; a
preemption signal saves, exits 75 and the rerun finishes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from support.wandb_files import history as wandb_history

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "train" / "sd_lora_tiny.yaml")


def train_cmd(galaxy_hpc, store, out, *overrides):
    # --json before the overrides: KEY=VALUE is taken anywhere after the subcommand.
    return [galaxy_hpc, "train", CONFIG, "--json", f"data.store={store}",
            f"run.output_dir={out}", "run.log_every=1", *overrides]


def run(cmd, cwd, timeout=600, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, **kw)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(done.stdout)  # --json: the one document on stdout, DeepSpeed's on stderr


def log_rows(out):
    return [json.loads(line) for line in (Path(out) / "train_log.jsonl").read_text().splitlines()]


def generate(pipeline):
    pipeline.set_progress_bar_config(disable=True)
    image = pipeline("sdss, elliptical galaxy", num_inference_steps=3, output_type="np",
                     generator=torch.Generator().manual_seed(0)).images
    assert image.shape == (1, 64, 64, 3) and np.isfinite(image).all()
    return image


def test_lora_run_exports_weights_diffusers_loads(sd_lora_run):
    """The run (tests/train/conftest.py, shared with test_exports) is 6 steps of
    sd_lora_tiny at rank 4, alpha 8, each step logged."""
    from diffusers import StableDiffusionPipeline

    out, result = sd_lora_run
    assert result["ok"] and result["step"] == 6 and result["artifact"] == str(out / "lora")
    assert (out / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert (out / "samples" / "step-00000006.png").is_file()
    rows = log_rows(out)
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert all({"loss", "lr", "images_per_s", "grad_norm"} <= set(r) for r in rows)
    # The same rows and the final grid, as an image, in the run's offline W&B file.
    (wandb_file,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    logged = wandb_history(wandb_file)
    assert [logged[r["step"]]["loss"] for r in rows] == [r["loss"] for r in rows]
    assert logged[6]["samples/_type"] == "image-file"
    assert (wandb_file.parent / "files" / logged[6]["samples/path"]).is_file()
    base = StableDiffusionPipeline.from_pretrained(out / "base")
    before = generate(base)
    base.load_lora_weights(out / "lora")
    after = generate(base)
    assert not np.allclose(before, after)  # the LoRA changed what the model draws


def test_full_finetune_loss_goes_down(galaxy_hpc, synth_store, tmp_path):
    out = tmp_path / "full"
    run(train_cmd(galaxy_hpc, synth_store, out, "run.max_steps=36", "model.method=full",
                  "optim.lr=2e-3", "data.caption_dropout=0", "run.checkpoint_every=100"),
        tmp_path)
    losses = [r["loss"] for r in log_rows(out)]
    first, last = np.mean(losses[:8]), np.mean(losses[-8:])
    assert last < 0.8 * first, (first, last)


@pytest.mark.mpi
@pytest.mark.parametrize("stage, extra", [
    (2, ["model.method=lora", "model.lora.rank=4", "model.lora.alpha=8"]),
    (3, ["model.method=full", "model.train_text_encoder=true", "ema.enabled=true"]),
])
def test_two_ranks_zero(galaxy_hpc, mpiexec, synth_store, tmp_path, stage, extra):
    from diffusers import StableDiffusionPipeline

    out = tmp_path / f"zero{stage}"
    result = run([mpiexec, "-n", "2", *train_cmd(galaxy_hpc, synth_store, out, "run.max_steps=4",
                                                 f"zero.stage={stage}", *extra,
                                                 "data.validation_fraction=0.25",
                                                 "run.eval_every=2")], tmp_path)
    assert result["ok"] and result["step"] == 4
    # The held-out diffusion loss (same noise and timesteps each time), on both ranks' shares.
    validations = [r for r in log_rows(out) if "val_loss" in r]
    assert [r["step"] for r in validations] == [2, 4]
    assert all(np.isfinite(r["val_loss"]) and r["val_items"] > 0 for r in validations)
    best = json.loads((out / "checkpoints" / "best.json").read_text())
    assert best["step"] == min(validations, key=lambda r: r["val_loss"])["step"]
    assert result["validation"]["best_step"] == best["step"]
    marker = json.loads((out / "checkpoints" / "checkpoint-00000004" / "COMPLETE").read_text())
    assert marker["world_size"] == 2 and marker["zero_stage"] == stage
    assert sorted(p.name for p in (out / "checkpoints" / "checkpoint-00000004").glob("extra-*")) == \
        ["extra-rank-00000.pt", "extra-rank-00001.pt"]
    if stage == 3:
        pipeline = StableDiffusionPipeline.from_pretrained(out / "pipeline")
        generate(pipeline)
    else:
        assert (out / "lora" / "pytorch_lora_weights.safetensors").is_file()
    # diffusers alone, in a process that never imports galaxy_hpc, redraws the grid the
    # two ranks drew (from the EMA under ZeRO-3, from a LoRA of alpha 2 x rank under ZeRO-2).
    checker = REPO / "tests" / "third_party" / "redraw_sd.py"
    done = subprocess.run([sys.executable, str(checker), str(out),
                           "pipeline" if stage == 3 else "lora"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    redraw = json.loads(done.stdout.strip().splitlines()[-1])
    assert redraw["max_diff"] <= 1, redraw


# Logged every 3 steps, saved every 4: resumes fall between logged steps.
RESUMABLE = ("model.method=full", "run.log_every=3", "run.checkpoint_every=4",
             "data.num_workers=2")


@pytest.fixture(scope="module")
def straight(galaxy_hpc, synth_store, tmp_path_factory):
    """The uninterrupted run the resumed ones must read as."""
    out = tmp_path_factory.mktemp("straight") / "run"
    run(train_cmd(galaxy_hpc, synth_store, out, "run.max_steps=12", *RESUMABLE), out.parent)
    return out


def same_rows(a, b):
    """Logged rows equal in everything but the wall clock."""
    clock = ("time", "images_per_s")
    return [{k: v for k, v in r.items() if k not in clock} for r in log_rows(a)] == \
        [{k: v for k, v in r.items() if k not in clock} for r in log_rows(b)]


def test_resume_is_exact(galaxy_hpc, synth_store, tmp_path, straight):
    """Ended at step 5 and resumed, training reaches the same weights as straight through, and
    the log reads as the straight run's: step 5's end-of-run row, a partial window, is
    replaced by the full window at step 6."""
    from safetensors.torch import load_file

    split = tmp_path / "split"
    run(train_cmd(galaxy_hpc, synth_store, split, "run.max_steps=5", *RESUMABLE), tmp_path)
    assert [r["step"] for r in log_rows(split)] == [3, 5]
    resumed = run(train_cmd(galaxy_hpc, synth_store, split, "run.max_steps=12", *RESUMABLE),
                  tmp_path)
    assert resumed["resumed_from"] == 5
    weights = "pipeline/unet/diffusion_pytorch_model.safetensors"
    a, b = load_file(straight / weights), load_file(split / weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in log_rows(split)] == [3, 6, 9, 12]
    assert same_rows(straight, split)


def test_preemption_signal_saves_exits_75_and_rerun_finishes(galaxy_hpc, synth_store, tmp_path):
    out = tmp_path / "preempt"
    cmd = train_cmd(galaxy_hpc, synth_store, out, "run.max_steps=400", "run.checkpoint_every=1000")
    job = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "SLURM_JOB_ID": ""})
    deadline = time.time() + 300
    while not ((out / "train_log.jsonl").exists() and len(log_rows(out)) >= 3):
        assert time.time() < deadline and job.poll() is None, job.communicate()
        time.sleep(0.5)
    job.send_signal(signal.SIGUSR1)
    stdout, stderr = job.communicate(timeout=300)
    assert job.returncode == 75, stderr[-3000:]
    saved = json.loads(stdout.strip().splitlines()[-1])
    assert saved["preempted"] and 3 <= saved["step"] < 400
    assert (out / "checkpoints" / f"checkpoint-{saved['step']:08d}" / "COMPLETE").is_file()
    finished = run(train_cmd(galaxy_hpc, synth_store, out, "run.max_steps=" + str(saved["step"] + 3)),
                   tmp_path)
    assert finished["ok"] and finished["resumed_from"] == saved["step"]


def wait_for_row(out, step, job, timeout=300):
    """Until the run has logged `step` (the process must still be running)."""
    deadline = time.time() + timeout
    path = Path(out) / "train_log.jsonl"
    while not (path.exists() and any(r["step"] >= step for r in log_rows(out))):
        assert time.time() < deadline and job.poll() is None, job.communicate()
        time.sleep(0.05)


def test_logs_after_a_kill_and_a_signal_read_as_the_straight_run(galaxy_hpc, synth_store,
                                                                 tmp_path, straight):
    """SIGKILL after step 6 was logged (checkpoint at 4), then SIGUSR1 after step 9: no step
    is logged twice, and each window averages the same micro-steps as the straight run's.
    A rerun of the finished run then says it is complete and changes nothing."""
    out = tmp_path / "interrupted"
    env = {**os.environ, "SLURM_JOB_ID": ""}
    longer = train_cmd(galaxy_hpc, synth_store, out, "run.max_steps=400", *RESUMABLE)
    job = subprocess.Popen(longer, cwd=tmp_path, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=env)
    wait_for_row(out, 6, job)
    job.kill()
    job.wait(timeout=60)
    assert [r["step"] for r in log_rows(out)] == [3, 6]  # 6 was logged after the checkpoint
    job = subprocess.Popen(longer, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env)
    wait_for_row(out, 9, job)
    job.send_signal(signal.SIGUSR1)
    stdout, stderr = job.communicate(timeout=300)
    assert job.returncode == 75, stderr[-3000:]
    saved = json.loads(stdout)
    assert saved["preempted"] and 9 <= saved["step"] < 12
    finished = run(train_cmd(galaxy_hpc, synth_store, out, "run.max_steps=12", *RESUMABLE),
                   tmp_path)
    assert finished["resumed_from"] == saved["step"]
    assert [r["step"] for r in log_rows(out)] == [3, 6, 9, 12]
    assert same_rows(straight, out)

    log = (out / "train_log.jsonl").read_text()
    again = run(train_cmd(galaxy_hpc, synth_store, out, "run.max_steps=12", *RESUMABLE),
                tmp_path)
    assert again["already_complete"] and again["ok"] and again["step"] == 12
    assert again["artifact"] == finished["artifact"] == str(out / "pipeline")
    assert again["loss"] == finished["loss"] == log_rows(out)[-1]["loss"]
    without_json = [a for a in train_cmd(galaxy_hpc, synth_store, out, "run.max_steps=12",
                                         *RESUMABLE) if a != "--json"]
    human = subprocess.run(without_json, capture_output=True, text=True, timeout=600,
                           cwd=tmp_path)
    assert human.returncode == 0, human.stderr[-3000:]
    assert "already complete" in human.stdout and "nan" not in human.stdout
    assert str(out / "pipeline") in human.stdout
    assert (out / "train_log.jsonl").read_text() == log  # nothing trained or logged again


def rank_pid(launcher_pid, rank, timeout=120):
    """The pid of MPI rank `rank` among the launcher's descendants (PMI_RANK in its environ)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                parents, pid = [], entry.name
                while pid not in ("0", "1") and len(parents) < 10:
                    pid = (Path("/proc") / pid / "stat").read_text().rsplit(")", 1)[1].split()[1]
                    parents.append(pid)
            except OSError:
                continue
            if f"PMI_RANK={rank}".encode() in environ and str(launcher_pid) in parents:
                return int(entry.name)
        time.sleep(0.2)
    raise AssertionError(f"no rank {rank} under pid {launcher_pid}")


@pytest.mark.mpi
def test_a_preempted_rank_reports_preemption_not_failure(galaxy_hpc, mpiexec, synth_store,
                                                         tmp_path):
    """SIGUSR1 reaches rank 1 only: both ranks stop at the same step and exit 75; rank 1's log
    says it stopped for preemption, and nothing anywhere says it failed."""
    out, logs = tmp_path / "two", tmp_path / "ranks"
    env = {**os.environ, "SLURM_JOB_ID": "", "GHPC_RANK_LOG_DIR": str(logs)}
    job = subprocess.Popen([mpiexec, "-n", "2", *train_cmd(
        galaxy_hpc, synth_store, out, "run.max_steps=400", "run.checkpoint_every=1000")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    wait_for_row(out, 2, job)
    os.kill(rank_pid(job.pid, 1), signal.SIGUSR1)
    stdout, stderr = job.communicate(timeout=300)
    assert job.returncode == 75, stderr[-3000:]
    assert json.loads(stdout)["preempted"]
    rank1 = (logs / "rank-00001.log").read_text()
    assert "received SIGUSR1" in rank1
    assert "stopped for preemption on rank 1/2 (exit 75)" in rank1
    assert "failed" not in stderr + rank1 and "Traceback" not in stderr + rank1
