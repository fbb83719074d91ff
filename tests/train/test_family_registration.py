"""A model family added from outside galaxy_hpc: one package and one registry line.

The toy family (tests/train/toy_family/) registers itself with `register_model`; then the
ordinary `galaxy-hpc train` path loads its config by kind, trains it with the one loop
on the store, exports, and judges the export after the process group is gone. Checked
with safetensors and the files the run wrote, in a process of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.ports import free_port

HERE = Path(__file__).resolve().parent

RUN = """
import sys
import toy_family.registration  # the one registry line
from galaxy_hpc.cli.main import main
sys.exit(main(sys.argv[1:]))
"""

CONFIG = """kind: train_toy
run: {max_steps: 4, micro_batch_size: 4, log_every: 1, num_samples: 4, checkpoint_every: 4,
      loggers: []}
zero: {stage: 0, precision: fp32}
model: {width: 4}
"""


def galaxy_hpc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1",
           "MASTER_PORT": str(free_port()),
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env, check=False)


def test_a_registered_family_trains_exports_and_is_judged(synth_store, tmp_path):
    from safetensors.numpy import load_file

    from galaxy_hpc.data.dataset import StoreDataset
    from galaxy_hpc.train.run_dir import RESULT_FILE

    config = tmp_path / "toy.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "run"
    shown = galaxy_hpc("config", str(config), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "kind: train_toy" in shown.stdout and "width: 4" in shown.stdout

    done = galaxy_hpc("train", str(config), f"data.store={synth_store}",
                      f"run.output_dir={out}", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"] and result["step"] == 4 and result["artifact"] == str(out / "toy")

    weights = load_file(out / "toy" / "model.safetensors")
    assert weights["net.0.weight"].shape == (4, 3, 3, 3)  # 3 bands of the synth store -> width
    card = json.loads((out / "toy" / "toy.json").read_text())
    assert card["image_shape"] == [3, 64, 64] and card["store"] == str(synth_store)
    # The stretch the family exported is the one the loop's dataset applied.
    assert card["stretch"] == StoreDataset(synth_store, shuffle=False).stretch.to_dict()
    # evaluate_export ran once training was over; its summary is in the result, and in
    # the result file a rerun reports.
    judged = json.loads((out / "toy_eval.json").read_text())
    assert result["evaluation"] == judged and judged["denoising_mse"] > 0
    assert json.loads((out / RESULT_FILE).read_text())["evaluation"] == judged
    assert (out / "samples").is_dir() and any((out / "samples").glob("step-*.png"))
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4]


def test_a_kind_registered_twice_differently_is_refused():
    from galaxy_hpc.registry import MODELS, ModelSpec, register_model

    spec = MODELS["train_gan"]
    register_model(spec)  # the same spec again: harmless
    with pytest.raises(ValueError, match="already registered"):
        register_model(ModelSpec("train_gan", spec.model_config, "x.y:Other"))
    with pytest.raises(ValueError, match="module:attribute"):
        register_model(ModelSpec("train_new", "no_colon", spec.family))
