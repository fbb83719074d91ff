"""Exports are what was trained: checked with the tools users open them with.

Each run keeps an EMA of its weights and samples with it; its export must be that EMA,
not the live weights. The checks run tests/third_party/*.py in processes that import
diffusers, torch and safetensors but never galaxy_hpc, against what the run itself
saw: its own sample grid (redrawn from the export) and its own checkpoint (the EMA
shadow, by parameter name).
"""

from __future__ import annotations

import pytest

from export_checks import assert_export_is_ema, train
from support.stores import write_synth_store
from support.third_party import third_party


@pytest.fixture(scope="module")
def flux_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "flux50.zarr"
    return write_synth_store(out, num_galaxies=48, seed=7, shard_size=16, captions=False, size=50,
                             output="float32")


def test_sd_full_export_redraws_the_runs_own_samples(fp32_run):
    """sd_full_tiny keeps an EMA (decay 0.99): diffusers, loading `pipeline/`, draws the
    run's last grid again, pixel for pixel up to rounding. (The run is test_bf16's fp32
    reference, trained once per session.)"""
    out = fp32_run("sd_full_tiny.yaml")
    redraw = third_party("redraw_sd.py", out, "pipeline")
    assert redraw["images"] == 4 and redraw["max_diff"] <= 1, redraw
    assert_export_is_ema(out, {"unet.": "pipeline/unet/diffusion_pytorch_model.safetensors",
                               "text_encoder.": "pipeline/text_encoder/model.safetensors"})


def test_lora_with_alpha_other_than_rank_loads_at_its_trained_strength(sd_lora_run):
    """alpha / rank is the LoRA's scale: the file carries the adapter's config, so
    `load_lora_weights` applies alpha 8 at rank 4 as trained (not as alpha == rank)."""
    out, _ = sd_lora_run  # rank 4, alpha 8 (tests/train/conftest.py)
    redraw = third_party("redraw_sd.py", out, "lora")
    assert redraw["max_diff"] <= 1, redraw


def test_a_lora_records_its_base_and_loads_without_being_told_it(sd_lora_run, tmp_path):
    """The run wrote its base beside the LoRA (a tiny model): lora/base.json names it
    relative to the folder, so `sample` needs no --base, and draws what it draws with it,
    also after the run folder moves."""
    import json
    import shutil

    import numpy as np
    from PIL import Image

    from galaxy_hpc.cli.main import main

    out, _ = sd_lora_run
    assert json.loads((out / "lora" / "base.json").read_text()) == {"base": "../base"}
    moved = tmp_path / "moved"
    shutil.copytree(out / "lora", moved / "lora")
    shutil.copytree(out / "base", moved / "base")
    common = ["--prompt", "sdss, a spiral galaxy", "--n", "2", "--seed", "3", "--steps", "2",
              "--device", "cpu"]
    assert main(["sample", str(out / "lora"), "--base", str(out / "base"), *common,
                 "--out", str(tmp_path / "told.png")]) == 0
    assert main(["sample", str(moved / "lora"), *common, "--out",
                 str(tmp_path / "recorded.png")]) == 0
    told = np.asarray(Image.open(tmp_path / "told.png"))  # a base row, then the LoRA's
    recorded = np.asarray(Image.open(tmp_path / "recorded.png"))  # the LoRA's row alone
    assert told.shape[0] == 2 * recorded.shape[0]
    np.testing.assert_array_equal(told[-recorded.shape[0]:], recorded)
    assert recorded.std() > 0 and not np.array_equal(told[:recorded.shape[0]], recorded)


@pytest.fixture(scope="module")
def ldm_vae_run(galaxy_hpc, synth_store, tmp_path_factory):
    """The LDM's first stage with an EMA: its export is checked, and the UNet stage trains
    on that export (one VAE run, not two)."""
    out = tmp_path_factory.mktemp("exports") / "ldm_vae_tiny"
    train(galaxy_hpc, "ldm_vae_tiny.yaml", synth_store, out, "run.max_steps=4",
          "ema.enabled=true", "model.scaling_num_items=16")
    return out


@pytest.mark.parametrize("config, overrides, mapping", [
    ("gan_tiny.yaml", ["model.consistency.every=0", "model.consistency.report_num_samples=32"],
     {"generator.": "generator/generator.safetensors"}),
    ("dino_head_tiny.yaml", ["ema.enabled=true", "ema.decay=0.5"],
     {"head.": "predictor/head.safetensors"}),
], ids=["gan", "dino"])
def test_family_export_is_the_checkpoints_ema(galaxy_hpc, synth_store, flux_store, tmp_path,
                                              config, overrides, mapping):
    store = flux_store if config.startswith("gan") else synth_store
    out = tmp_path / config.split(".")[0]
    train(galaxy_hpc, config, store, out, "run.max_steps=4", *overrides)
    assert_export_is_ema(out, mapping)


def test_ldm_vae_export_is_the_checkpoints_ema(ldm_vae_run):
    assert_export_is_ema(ldm_vae_run, {"vae.": "vae/diffusion_pytorch_model.safetensors"})


def test_ldm_unet_export_is_the_checkpoints_ema(galaxy_hpc, synth_store, ldm_vae_run, tmp_path):
    out = tmp_path / "unet"
    train(galaxy_hpc, "ldm_unet_tiny.yaml", synth_store, out, "run.max_steps=4",
          "ema.enabled=true", f"model.vae_path={ldm_vae_run / 'vae'}")
    assert_export_is_ema(out, {
        "unet.": "pipeline/unet/diffusion_pytorch_model.safetensors",
        "condition_encoder.": "pipeline/condition_encoder/diffusion_pytorch_model.safetensors"})
