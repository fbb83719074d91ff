"""The runs the real-layout and real-size cases share: what a user does with their
SD folder (LoRA or full fine-tune under ZeRO-3 on 2 ranks, checkpoint, resume, export,
redraw with diffusers alone, a catalog from the export) and their dinov2 folder."""

from __future__ import annotations

import json
from pathlib import Path

from support import cli_runs
from support.third_party import third_party, third_party_code

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "train"


def run_json(cmd, cwd, timeout=3000):
    return cli_runs.run_json(cmd, cwd=cwd, timeout=timeout)


def train_2_ranks(galaxy_hpc, mpiexec, config, out, *overrides):
    result = run_json([mpiexec, "-n", "2", galaxy_hpc, "train", str(CONFIGS / config),
                       f"run.output_dir={out}", "data.num_workers=0", "run.log_every=1",
                       "zero.stage=3", *overrides, "--json"], out.parent)
    assert result["ok"], result
    print(f"\n{config} {' '.join(overrides)}: memory {json.dumps(result['memory'])}")
    return result


def sd_lora_flow(galaxy_hpc, mpiexec, folder, store, tmp_path, *, precision="fp32"):
    """LoRA (alpha 2 x rank) on 2 ranks under ZeRO-3: one step and a checkpoint, resumed
    for a second, exported; diffusers redraws the run's grid from base + LoRA; a small
    catalog is generated from the export and read with plain zarr."""
    out = tmp_path / "lora"
    args = [f"data.store={store}", f"model.pretrained_model_name_or_path={folder}",
            "run.micro_batch_size=1", "run.num_samples=2", "model.sample_steps=2",
            "model.lora.rank=4", "model.lora.alpha=8", "run.checkpoint_every=1",
            f"zero.precision={precision}", "zero.max_live_parameters=100000000",
            "zero.max_reuse_distance=100000000"]
    train_2_ranks(galaxy_hpc, mpiexec, "sd_lora.yaml", out, "run.max_steps=1", *args)
    resumed = train_2_ranks(galaxy_hpc, mpiexec, "sd_lora.yaml", out, "run.max_steps=2", *args)
    assert resumed["resumed_from"] == 1 and resumed["step"] == 2
    redraw = third_party("redraw_sd.py", out, "lora", "--base", folder, timeout=1200)
    assert redraw["max_diff"] <= 1, redraw
    catalog = tmp_path / "catalog.zarr"
    run_json([galaxy_hpc, "generate", str(REPO / "configs" / "generate" / "catalog_tiny.yaml"),
              f"out={catalog}", "num_objects=4", "batch_size=2", "shard_size=4", "size=64",
              "model.kind=sd_lora", f"model.path={out / 'lora'}", f"model.base={folder}",
              "sampler.steps=2", f"conditions.path={store}", "--json"], tmp_path)
    read = third_party_code("import sys, zarr; g = zarr.open_group(sys.argv[1], mode='r'); "
                            "print(g['images'].shape)", catalog)
    assert read.startswith("(4, 3, 64, 64)"), read
    return resumed


def dino_flow(galaxy_hpc, mpiexec, folder, store, tmp_path, *, input_size):
    """Stage 1 (frozen backbone, head) then stage 2 (whole model from stage 1's
    predictor), each on 2 ranks under ZeRO-3, from the user's backbone folder."""
    common = [f"data.store={store}", "run.micro_batch_size=4", "run.max_steps=2",
              "zero.precision=fp32", f"model.input_size={input_size}",
              "model.heldout.max_items=16", "model.heldout.batch_size=8"]
    head = train_2_ranks(galaxy_hpc, mpiexec, "dino_head.yaml", tmp_path / "head",
                         f"model.backbone={folder}", *common)
    full = train_2_ranks(galaxy_hpc, mpiexec, "dino_full.yaml", tmp_path / "full",
                         f"model.init_from={tmp_path / 'head' / 'predictor'}", *common)
    return head, full
