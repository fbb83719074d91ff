"""What the training tests share: a small synthetic store (64 px, captions), and the tiny
SD runs that tests in several files assert on, each trained once per session (every
`galaxy-hpc train` pays DeepSpeed's and torch.distributed's start-up)."""

from __future__ import annotations

import os

import pytest
from export_checks import PRECISION_RUN, train
from support import stores


@pytest.fixture(scope="session")
def synth_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("train-data") / "synth64.zarr"
    return stores.write_synth_store(out, num_galaxies=96, seed=11, shard_size=32)


@pytest.fixture(scope="session")
def sd_lora_run(galaxy_hpc, synth_store, tmp_path_factory):
    """sd_lora_tiny, 6 steps, each logged to TensorBoard and W&B (offline), LoRA alpha 8
    at rank 4 (a scale other than 1): (output folder, `--json` result). test_train_sd
    loads it with diffusers' own API and reads its W&B run; test_exports redraws its grid
    from base + LoRA."""
    out = tmp_path_factory.mktemp("sd-runs") / "lora"
    result = train(galaxy_hpc, "sd_lora_tiny.yaml", synth_store, out, "run.max_steps=6",
                   "run.log_every=1", "model.lora.rank=4", "model.lora.alpha=8",
                   "optim.lr=5e-3", "run.loggers=[tensorboard,wandb]")
    return out, result


@pytest.fixture(scope="session")
def fp32_run(galaxy_hpc, synth_store, tmp_path_factory):
    """fp32_run(config) -> the folder of `config` trained in fp32 with PRECISION_RUN, once
    per session: the curve test_bf16 holds bf16 to, and (sd_full_tiny, which keeps an EMA)
    the export test_exports redraws the run's grid from."""
    made = {}

    def run(config: str):
        if config not in made:
            out = tmp_path_factory.mktemp("fp32-runs") / config.split(".")[0]
            train(galaxy_hpc, config, synth_store, out, *PRECISION_RUN, "zero.precision=fp32")
            made[config] = out
        return made[config]

    return run


@pytest.fixture(autouse=True)
def _deepspeed_on_cpu(monkeypatch):
    monkeypatch.setenv("DS_ACCELERATOR", os.environ.get("DS_ACCELERATOR", "cpu"))
