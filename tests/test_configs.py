"""Every YAML under configs/ loads into its typed config (a broken recipe fails here, not on a cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

import galaxy_hpc.jobs  # noqa: F401  (registers every config kind)
from hpc.config import load_config, read_yaml, to_dict

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_config_loads(path):
    cfg = load_config(path)
    assert to_dict(cfg)["kind"] == read_yaml(path)["kind"]  # inherit resolved


@pytest.mark.parametrize("config", ["gan_tiny.yaml", "ldm_vae_tiny.yaml", "ldm_unet_tiny.yaml",
                                    "dino_head_tiny.yaml"])
def test_families_that_train_on_pixels_refuse_a_latent_store(config):
    from hpc.config import ConfigError

    path = Path(__file__).resolve().parents[1] / "configs" / "train" / config
    with pytest.raises(ConfigError, match="data.latents: .* would ignore a latent store"):
        load_config(path, ["data.latents=/some/latents.zarr", "data.augment=false"])
    sd = path.with_name("sd_lora_tiny.yaml")
    assert load_config(sd, ["data.latents=/l.zarr", "data.augment=false"]).data.latents == "/l.zarr"
