"""The weights a training run starts from (an SD pipeline, stage 1's VAE, a DINOv2
backbone), damaged the way a copy cut short damages them: the run stops before
DeepSpeed starts with one line naming the file and how short it is, not a traceback
from inside diffusers or transformers (which names no file for weights)."""

from __future__ import annotations

from pathlib import Path

import pytest


def cut_short(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 3])


def test_sd_pipeline(tmp_path):
    from galaxy_hpc.models.sd.components import load_components, write_tiny_sd

    folder = write_tiny_sd(tmp_path / "sd")
    load_components(folder)  # whole, it loads
    for part in ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"):
        cut_short(folder / part)
        with pytest.raises(ValueError, match="cut short") as error:
            load_components(folder)
        assert str(folder / part) in str(error.value)
        assert "model.pretrained_model_name_or_path" in str(error.value)


def test_stage_one_vae(tmp_path):
    from diffusers import AutoencoderKL

    from galaxy_hpc.models.ldm.unet_family import load_frozen_vae

    folder = tmp_path / "vae"
    AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16,),
                  norm_num_groups=8, sample_size=32).save_pretrained(folder)
    cut_short(folder / "diffusion_pytorch_model.safetensors")
    with pytest.raises(ValueError, match="model.vae_path") as error:
        load_frozen_vae(str(folder), store=None)
    assert str(folder / "diffusion_pytorch_model.safetensors") in str(error.value)


def test_dinov2_backbone(tmp_path):
    from galaxy_hpc.models.dino.network import load_backbone
    from galaxy_hpc.models.published import write_dinov2_folder

    folder = write_dinov2_folder(tmp_path / "dinov2", shape="small")
    assert load_backbone(folder).config.model_type == "dinov2"
    cut_short(folder / "model.safetensors")
    with pytest.raises(ValueError, match="model.backbone") as error:
        load_backbone(folder)
    assert str(folder / "model.safetensors") in str(error.value)
