"""What `train` does with the output folder it finds: a run of another config is refused in
one line listing the differences (and --overwrite starts over), and a train that fails
before training starts leaves no config.yaml behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "train" / "sd_lora_tiny.yaml")


def train(galaxy_hpc, cwd, *args):
    return subprocess.run([galaxy_hpc, "train", CONFIG, *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_changed_config_is_refused_in_one_line_and_overwrite_starts_over(galaxy_hpc, synth_store,
                                                                         tmp_path):
    out = tmp_path / "run"
    common = (f"data.store={synth_store}", f"run.output_dir={out}", "run.log_every=1")
    first = train(galaxy_hpc, tmp_path, *common, "run.max_steps=2", "--json")
    assert first.returncode == 0, first.stderr[-3000:]

    # The rank of the LoRA changes the shapes of the saved state: refused before any build.
    # run.max_steps may change on resume and is not listed.
    changed = train(galaxy_hpc, tmp_path, *common, "run.max_steps=3", "model.lora.rank=8",
                    "optim.lr=2e-3")
    assert changed.returncode == 1
    assert "Traceback" not in changed.stderr and "size mismatch" not in changed.stderr
    line = changed.stderr.strip().splitlines()[-1]
    assert line.startswith(f"galaxy-hpc train: error: run.output_dir {out} holds a run of "
                           "another config (")
    assert "optim.lr: 0.001 -> 0.002" in line and "model.lora.rank: 4 -> 8" in line
    assert "run.max_steps:" not in line
    assert "new run.output_dir" in line and "--overwrite" in line
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["lora"]["rank"] == 4

    again = train(galaxy_hpc, tmp_path, *common, "run.max_steps=3", "model.lora.rank=8",
                  "optim.lr=2e-3", "--overwrite", "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    result = json.loads(again.stdout)
    assert result["ok"] and result["step"] == 3 and result["resumed_from"] is None
    assert "deleted the run of another config" in again.stderr
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["lora"]["rank"] == 8
    steps = [json.loads(r)["step"] for r in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == \
        ["checkpoint-00000003"]


def test_a_train_that_fails_before_training_leaves_no_config(galaxy_hpc, tmp_path):
    out = tmp_path / "run"
    failed = train(galaxy_hpc, tmp_path, f"data.store={tmp_path / 'missing.zarr'}",
                   f"run.output_dir={out}")
    assert failed.returncode == 1
    assert "missing.zarr" in failed.stderr.strip().splitlines()[-1]
    assert not (out / "config.yaml").exists()
