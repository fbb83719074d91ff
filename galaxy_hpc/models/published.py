"""The published architectures users pass, built with random weights in their folder layout.

Users hand the toolkit their own `stable-diffusion-v1-5` folder and `dinov2-base`;
nothing may download them here. These functions build the same architectures
(SD-1.5: UNet 860 M, CLIP ViT-L/14 text encoder 123 M, VAE 84 M; DINOv2-base 86 M)
from their published configs, with random weights, and save them the way the hub
folders are laid out (model_index.json, unet/, vae/, text_encoder/, tokenizer/ with
vocab.json and merges.txt, scheduler/; config.json + model.safetensors and
preprocessor_config.json), so that tests, benchmarks and the GPU check run exactly
the shapes and loading code a user's run does. Random weights change the pictures,
not the memory, the FLOP or the code path.

`shape="small"` keeps the layout and every class but narrows the widths, for the
suite's real-layout case that must fit its time budget.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SD_SHAPES = ("sd-1.5", "small")
DINO_SHAPES = ("dinov2-base", "small")


def sd_configs(shape: str = "sd-1.5") -> dict[str, dict[str, Any]]:
    """Configs of runwayml/stable-diffusion-v1-5's unet, vae, text_encoder and scheduler."""
    if shape not in SD_SHAPES:
        raise ValueError(f"shape must be one of {SD_SHAPES}, got {shape!r}")
    small = shape == "small"
    unet = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                block_out_channels=(32, 64, 64, 64) if small else (320, 640, 1280, 1280),
                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                cross_attention_dim=64 if small else 768, attention_head_dim=8,
                norm_num_groups=32, act_fn="silu", center_input_sample=False,
                downsample_padding=1, flip_sin_to_cos=True, freq_shift=0, mid_block_scale_factor=1)
    vae = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
               block_out_channels=(32, 32, 64, 64) if small else (128, 256, 512, 512),
               down_block_types=("DownEncoderBlock2D",) * 4,
               up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, act_fn="silu",
               sample_size=512, scaling_factor=0.18215)
    text = dict(hidden_size=64 if small else 768, intermediate_size=256 if small else 3072,
                num_hidden_layers=2 if small else 12, num_attention_heads=4 if small else 12,
                projection_dim=64 if small else 768, max_position_embeddings=77,
                hidden_act="quick_gelu", vocab_size=49408, layer_norm_eps=1e-5,
                bos_token_id=0, eos_token_id=2, pad_token_id=1)
    scheduler = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                     num_train_timesteps=1000, set_alpha_to_one=False, skip_prk_steps=True,
                     steps_offset=1)
    return {"unet": unet, "vae": vae, "text_encoder": text, "scheduler": scheduler}


def byte_level_tokenizer_files(folder: Path) -> None:
    """vocab.json and merges.txt of a CLIP tokenizer that needs no hub files: the 256
    byte symbols, each also with `</w>`, and the two specials; merges empty. Every text
    tokenizes (one token a byte), so captions of any length run through the real
    text encoder's shapes."""
    from galaxy_hpc.models.sd.components import _byte_alphabet

    vocab: dict[str, int] = {}
    for symbol in _byte_alphabet():
        vocab[symbol] = len(vocab)
        vocab[symbol + "</w>"] = len(vocab)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")


def write_sd_folder(path: str | Path, *, shape: str = "sd-1.5", seed: int = 0) -> Path:
    """A StableDiffusionPipeline folder of `shape` with random weights (float32)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from hpc.files import follow_umask

    path = Path(path)
    configs = sd_configs(shape)
    torch.manual_seed(seed)
    tokenizer_dir = path / "tokenizer"
    byte_level_tokenizer_files(tokenizer_dir)
    tokenizer = CLIPTokenizer(vocab_file=str(tokenizer_dir / "vocab.json"),
                              merges_file=str(tokenizer_dir / "merges.txt"), model_max_length=77)
    vocab = tokenizer.get_vocab()
    text = dict(configs["text_encoder"], bos_token_id=vocab["<|startoftext|>"],
                eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"])
    pipeline = StableDiffusionPipeline(
        unet=UNet2DConditionModel(**configs["unet"]), vae=AutoencoderKL(**configs["vae"]),
        text_encoder=CLIPTextModel(CLIPTextConfig(**text)), tokenizer=tokenizer,
        scheduler=PNDMScheduler(**configs["scheduler"]), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    pipeline.save_pretrained(path)
    follow_umask(path)
    return path


def write_dinov2_folder(path: str | Path, *, shape: str = "dinov2-base", seed: int = 0) -> Path:
    """facebook/dinov2-base's layout (config.json, model.safetensors,
    preprocessor_config.json) with random weights; `small` narrows it."""
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    from hpc.files import follow_umask

    if shape not in DINO_SHAPES:
        raise ValueError(f"shape must be one of {DINO_SHAPES}, got {shape!r}")
    torch.manual_seed(seed)
    # Dinov2Config's defaults are dinov2-base: hidden 768, 12 layers, 12 heads, patch 14.
    config = (Dinov2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=4)
              if shape == "small" else Dinov2Config())
    path = Path(path)
    Dinov2Model(config).save_pretrained(path)
    BitImageProcessor(do_center_crop=True, crop_size={"height": 224, "width": 224},
                      size={"shortest_edge": 256}, image_mean=[0.485, 0.456, 0.406],
                      image_std=[0.229, 0.224, 0.225]).save_pretrained(path)
    follow_umask(path)
    return path
