"""Tiny real models for the generation tests, built from configs in seconds (no training:
random weights draw noise, which is all that determinism, resume and provenance need).

- a Stable Diffusion pipeline folder at 32 px (galaxy_hpc.models.sd's tiny SD-1.5 shape);
- LoRA weights for it (peft adapter on the attention projections, non-zero B so that it
  changes the images), saved as `save_lora_weights` writes them;
- GalaxyLDMPipeline folders at 32 px: one conditioned on the 37 GZ2 vote fractions of a
  uint8 store, one on (redshift, log_stellar_mass) of a 4-band float32 flux store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

CAPTIONS = [
    "sdss, elliptical galaxy",
    "sdss, spiral galaxy, obvious bulge prominence, tightly wound spiral arms, 2 spiral arms",
    "sdss, edge-on galaxy, with rounded edge-on bulge",
    "sdss, smooth, cigar shaped galaxy",
    "sdss, spiral galaxy, merger",
    "sdss, ring galaxy",
]


def write_tiny_sd(folder: Path, *, size: int = 32) -> Path:
    from galaxy_hpc.models.sd.components import save_pipeline, tiny_components

    return save_pipeline(tiny_components(captions=CAPTIONS, image_size=size, seed=0), folder)


def write_tiny_lora(base: Path, folder: Path, *, seed: int = 1) -> Path:
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if "lora_B" in name:  # peft starts B at zero: the adapter would do nothing
                parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator))
    StableDiffusionPipeline.save_lora_weights(
        folder, unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)),
        safe_serialization=True)
    return folder


def write_tiny_ldm(folder: Path, *, condition_names: list[str], channels: int = 3,
                   stretch: dict | None = None, size: int = 32, seed: int = 0) -> Path:
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler

    from galaxy_hpc.models.ldm.condition import ConditionEncoder
    from galaxy_hpc.models.ldm.config import ConditionSection, LatentUNetModelConfig
    from galaxy_hpc.models.ldm.pipeline import GalaxyLDMPipeline
    from galaxy_hpc.models.ldm.unet_family import build_unet

    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=channels, out_channels=channels, latent_channels=4,
                        block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1,
                        norm_num_groups=8, sample_size=size)
    model = LatentUNetModelConfig(vae_path="-", block_out_channels=[32, 64],
                                  attention=[False, True], layers_per_block=1, head_channels=8,
                                  norm_num_groups=8, cross_attention_dim=32,
                                  condition=ConditionSection(num_tokens=2, hidden_dim=32))
    unet = build_unet(model, vae.config, (channels, size, size))
    count = len(condition_names)
    encoder = ConditionEncoder(num_conditions=count, num_tokens=2, embed_dim=32, hidden_dim=32,
                               condition_names=condition_names, mean=[0.5] * count,
                               std=[0.3] * count)
    scheduler = DPMSolverMultistepScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                            beta_end=0.012, num_train_timesteps=1000)
    pipe = GalaxyLDMPipeline(vae=vae, unet=unet, condition_encoder=encoder, scheduler=scheduler,
                             stretch=stretch or {"kind": "uint8"})
    pipe.save_pretrained(folder)
    return folder


def flux_stretch(bands: int) -> dict:
    return {"kind": "asinh", "softening": [0.01] * bands, "lower": [-0.05] * bands,
            "upper": [float(v) for v in np.linspace(2.0, 3.0, bands)]}


def write_tiny_gan(folder: Path, *, channels: int = 4, size: int = 32, seed: int = 0) -> Path:
    """An untrained conditional-GAN generator folder on (redshift, log stellar mass), as a
    train_gan run exports it: what generation loads."""
    from galaxy_hpc.models.gan.generator import GalaxyGenerator
    from galaxy_hpc.models.gan.networks import generator_from_spec

    torch.manual_seed(seed)
    spec = {"image_shape": [channels, size, size], "image_dtype": "float32",
            "num_conditions": 2, "condition_names": ["redshift", "log_stellar_mass"],
            "condition_mean": [0.1, 10.5], "condition_std": [0.05, 0.5], "latent_dim": 16,
            "condition_dim": 16, "mapping_layers": 1, "style_dim": 32,
            "channels": [32, 16, 16], "norm_groups": 4, "stretch": flux_stretch(channels),
            "store": "tiny"}
    return GalaxyGenerator(generator_from_spec(spec), spec).save(folder)
