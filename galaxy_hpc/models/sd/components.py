"""Loading the parts of a Stable Diffusion pipeline from a local folder, and a tiny one.

Nothing is downloaded: `pretrained_model_name_or_path` must be a folder in
diffusers layout (what `StableDiffusionPipeline.save_pretrained` writes, or a
copy of stable-diffusion-v1-5 fetched once on a login node), or the Hub id of one
in the local Hugging Face cache (hpc.hub). `write_tiny_sd`
builds an SD-1.5-shaped pipeline small enough to train on a laptop CPU in
seconds, with a tokenizer learned from galaxy captions, for tests and the demo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc.files import follow_umask, loading_from, read_json
from hpc.hub import resolve_weights

SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
# Words as CLIP's pre-tokenizer splits them (letters, single digits, punctuation runs).
_WORD = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]+")


@dataclass
class SDComponents:
    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    noise_scheduler: Any  # DDPM for training; its config seeds the samplers
    inference_scheduler: Any  # what the exported pipeline ships (the base model's own)
    path: Path | None  # None for a tiny model built in memory


def load_components(path: str | Path, *, partitioned: tuple[str, ...] = (),
                    partition: Any = None) -> SDComponents:
    """The parts of the pipeline folder at `path`. Those named in `partitioned` ("unet",
    "text_encoder": what a run trains) are created inside `partition.context()` from
    their configs and filled by `partition.load` (ZeRO-3: no rank holds them whole);
    the rest load whole."""
    path = resolve_weights(str(path), field="model.pretrained_model_name_or_path")
    folder = Path(path)
    if not str(path):
        raise ValueError("model.pretrained_model_name_or_path is empty: give a local folder in "
                         "diffusers layout (e.g. a saved stable-diffusion-v1-5)")
    if not folder.is_dir():
        raise FileNotFoundError(f"model.pretrained_model_name_or_path: no such folder {folder} "
                                "(models load from local folders; nothing is downloaded)")
    missing = [name for name in SUBFOLDERS if not (folder / name).is_dir()]
    if missing:
        raise ValueError(f"{folder} is not a Stable Diffusion folder in diffusers layout: "
                         f"missing {', '.join(missing)}/")
    import diffusers

    scheduler_class = read_json(folder / "scheduler" / "scheduler_config.json", "the scheduler")
    inference_class = getattr(diffusers, scheduler_class.get("_class_name", "PNDMScheduler"))
    if partitioned and partition is None:
        raise ValueError("partitioned parts need a partition (the training loop's)")
    with loading_from(f"model.pretrained_model_name_or_path {folder} cannot be loaded", folder):
        return _load_parts(folder, inference_class, partitioned, partition)


def _load_parts(folder: Path, inference_class: Any, partitioned: tuple[str, ...],
                partition: Any) -> SDComponents:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if "unet" in partitioned:
        with partition.context():
            unet = UNet2DConditionModel.from_config(
                UNet2DConditionModel.load_config(folder, subfolder="unet"))
        partition.load(unet, folder / "unet")
    else:
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    if "text_encoder" in partitioned:
        with partition.context():
            text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
        partition.load(text_encoder, folder / "text_encoder")
    else:
        text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder")
    return SDComponents(
        unet=unet,
        vae=AutoencoderKL.from_pretrained(folder, subfolder="vae"),
        text_encoder=text_encoder,
        tokenizer=CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer"),
        noise_scheduler=DDPMScheduler.from_pretrained(folder, subfolder="scheduler"),
        inference_scheduler=inference_class.from_pretrained(folder, subfolder="scheduler"),
        path=folder,
    )


def _byte_alphabet() -> list[str]:
    """The 256 byte symbols of byte-level BPE: printable bytes stand for themselves, the
    others are shifted past 255 so that every byte is a visible character."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    symbols, shifted = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def tiny_tokenizer(texts: list[str]) -> Any:
    """A CLIP tokenizer whose vocabulary holds every word of `texts` (galaxy captions).

    Built, not learned: each word gets a left-to-right chain of BPE merges
    (s+d, sd+s, sds+s</w>), words in sorted order. Learning the merges with the
    tokenizers library breaks ties in hash order, so two processes (two ranks of
    one job) would disagree on token ids; this construction is deterministic.
    Characters outside the words fall back to the 256 byte symbols.
    """
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}
    for symbol in _byte_alphabet():
        vocab[symbol] = len(vocab)
        vocab[symbol + "</w>"] = len(vocab)
    words = sorted({word for text in texts for word in _WORD.findall(text.lower())})
    merges: list[tuple[str, str]] = []
    for word in words:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        joined = pieces[0]
        for piece in pieces[1:]:
            pair = (joined, piece)
            joined += piece
            if joined not in vocab:
                vocab[joined] = len(vocab)
                merges.append(pair)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def tiny_components(*, captions: list[str] | None = None, image_size: int = 64,
                    seed: int = 0) -> SDComponents:
    """An SD-1.5-shaped model with tiny widths (UNet ~0.8 M parameters), built in memory.

    Same component classes as stable-diffusion-v1-5 (VAE downsampling 8x, 4 latent
    channels, CLIP text encoder, cross-attention UNet), so every code path that trains
    or samples the real model runs on it. Deterministic in (captions, image_size, seed):
    every rank of a job builds the same one.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        DDPMScheduler,
        DPMSolverMultistepScheduler,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from galaxy_hpc.models.sd.config import DEFAULT_PROMPTS

    if image_size % 8:
        raise ValueError(f"image_size must be a multiple of 8 (the VAE downsamples 8x), got {image_size}")
    tokenizer = tiny_tokenizer((captions or []) + DEFAULT_PROMPTS * 4)
    torch.manual_seed(seed)
    vocab = tokenizer.get_vocab()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=77,
        bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"]))
    unet = UNet2DConditionModel(
        sample_size=image_size // 8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=8, norm_num_groups=8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=8, sample_size=image_size)
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              num_train_timesteps=1000, prediction_type="epsilon",
                              clip_sample=False, steps_offset=1)
    return SDComponents(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                        noise_scheduler=scheduler,
                        inference_scheduler=DPMSolverMultistepScheduler.from_config(scheduler.config),
                        path=None)


def save_pipeline(parts: SDComponents, path: str | Path, *, unet: Any = None,
                  text_encoder: Any = None) -> Path:
    """Write a StableDiffusionPipeline folder from components (unet/text encoder replaced
    when given)."""
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline(
        vae=parts.vae, text_encoder=text_encoder or parts.text_encoder, tokenizer=parts.tokenizer,
        unet=unet or parts.unet, scheduler=parts.inference_scheduler, safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    path = Path(path)
    pipeline.save_pretrained(path)
    follow_umask(path)
    return path


def write_tiny_sd(path: str | Path, **tiny: Any) -> Path:
    """A tiny SD-1.5-shaped pipeline folder (see tiny_components), for tests and demos."""
    return save_pipeline(tiny_components(**tiny), path)
