"""Stable Diffusion generators (a full pipeline folder, or a base + LoRA weights): captions
to RGB galaxies, text-to-image or img2img from real galaxies.

What makes it fast on a GPU, against a loop calling the pipeline one prompt at a time:
batches of `batch_size` objects (the UNet sees 2B latents with guidance); bf16/fp16;
channels-last UNet; text embeddings computed once per distinct caption, not per object
(a catalog drawn from GalaxySD-style captions repeats a few hundred captions a million
times); a fused LoRA (no extra matmuls per step); optional torch.compile.

Reproducibility: the pipeline draws object k's initial latents, and every later noise
(ancestral steps, img2img's noising), from its own torch.Generator seeded with seeds[k]
(diffusers does so when given a list of generators), so an object is what diffusers
draws for that prompt and seed. Captions are encoded in fixed groups of GROUP distinct
captions of the catalog's vocabulary, so a caption's embedding does not depend on which
other captions a rank met first.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.models.contract import ConditionBatch
from galaxy_hpc.models.samplers import build_scheduler, scheduler_provenance
from hpc.hub import resolve_weights

GROUP = 8  # distinct captions encoded per text-encoder call
CACHE_GROUPS = 256  # groups kept (SD-1.5 in bf16: 8 x 77 x 768 x 2 B = 0.9 MiB per group)
LORA_FILE = "pytorch_lora_weights.safetensors"


def _pipeline_folder(path: str, field: str) -> Path:
    folder = Path(resolve_weights(path, field=field)) if path else None
    if folder is None:
        raise ValueError(f"{field} is empty: give a StableDiffusionPipeline folder "
                         "(diffusers layout; nothing is downloaded)")
    if not folder.is_dir():
        raise FileNotFoundError(f"{field}: no such folder {folder} (models load from local "
                                "folders; nothing is downloaded)")
    if not (folder / "model_index.json").is_file():
        raise ValueError(f"{field}: {folder} is not a diffusers pipeline folder (no "
                         "model_index.json): give what StableDiffusionPipeline.save_pretrained "
                         "writes, e.g. a full fine-tune's pipeline/")
    return folder


def quiet_loading() -> None:
    """No per-component loading bars: rank 0's terminal shows the catalog's progress."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def _load_pipeline(folder: Path, runtime: Any) -> Any:
    from diffusers import StableDiffusionPipeline

    quiet_loading()
    pipe = StableDiffusionPipeline.from_pretrained(
        folder, dtype=runtime.dtype, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class SDGenerator:
    condition_kind = "text"
    condition_names = None
    image_dtype = "uint8"
    uses_sampler = True
    supports_init_images = True

    def __init__(self, pipe: Any, sampler: Any, runtime: Any, *, size: int | None,
                 identity: dict[str, Any], lora_scale: float | None = None) -> None:
        self.pipe = pipe.to(runtime.device)
        self.sampler = sampler
        self.runtime = runtime
        self.pipe.scheduler = build_scheduler(sampler, pipe.scheduler.config)
        native = pipe.unet.config.sample_size * pipe.vae_scale_factor
        self.size = int(size or native)
        self.image_shape = (3, self.size, self.size)
        self._identity = identity
        self._lora_scale = lora_scale  # set only when the LoRA is not fused
        self._groups: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._negative: dict[str, torch.Tensor] = {}
        self._img2img: Any = None
        if runtime.device.type == "cuda":
            self.pipe.unet.to(memory_format=torch.channels_last)
        if runtime.compile:
            self.pipe.unet.compile()

    # -- provenance ---------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    def sampler_provenance(self) -> dict[str, Any]:
        return scheduler_provenance(self.pipe.scheduler)

    # -- text embeddings, once per distinct caption ------------------------------------
    def _encode(self, prompts: list[str]) -> torch.Tensor:
        embeds, _ = self.pipe.encode_prompt(prompts, self.runtime.device, 1, False,
                                            lora_scale=self._lora_scale)
        return embeds

    def _group(self, group: int, vocabulary: Any) -> torch.Tensor:
        if group in self._groups:
            self._groups.move_to_end(group)
            return self._groups[group]
        prompts = [str(p) for p in vocabulary[group * GROUP:(group + 1) * GROUP]]
        self._groups[group] = embeds = self._encode(prompts)
        if len(self._groups) > CACHE_GROUPS:
            self._groups.popitem(last=False)
        return embeds

    def prompt_embeddings(self, batch: ConditionBatch) -> torch.Tensor:
        if batch.caption_ids is None or batch.vocabulary is None:
            raise ValueError("a Stable Diffusion catalog needs captions (conditions."
                             "caption_column or conditions.prompt)")
        ids = np.asarray(batch.caption_ids, dtype=np.int64)
        return torch.stack([self._group(int(i) // GROUP, batch.vocabulary)[int(i) % GROUP]
                            for i in ids])

    def forget_captions(self) -> None:
        """Drop the cached caption embeddings: the next batch brings another vocabulary
        (a catalog keeps one for its whole run; on-demand requests do not)."""
        self._groups.clear()

    def negative_embeddings(self, prompt: str, count: int) -> torch.Tensor:
        if prompt not in self._negative:
            self._negative[prompt] = self._encode([prompt])
        return self._negative[prompt].expand(count, -1, -1)

    # -- images ---------------------------------------------------------------------------
    def _img2img_pipeline(self) -> Any:
        if self._img2img is None:
            from diffusers import StableDiffusionImg2ImgPipeline

            self._img2img = StableDiffusionImg2ImgPipeline(**self.pipe.components,
                                                           requires_safety_checker=False)
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

    def _init_images(self, images: np.ndarray) -> np.ndarray:
        """Store images (B, 3, h, w) uint8 -> (B, size, size, 3) float in [0, 1]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"img2img with Stable Diffusion needs RGB store images "
                             f"(N, 3, H, W), got shape {images.shape}")
        if images.dtype != np.uint8:
            raise ValueError("img2img with Stable Diffusion needs a uint8 (RGB) store; this "
                             "store holds float flux")
        x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bicubic",
                                                antialias=True, align_corners=False).clamp(0, 1)
        return x.permute(0, 2, 3, 1).numpy()

    @torch.inference_mode()
    def generate(self, batch: ConditionBatch, seeds: np.ndarray) -> np.ndarray:
        count = len(batch.indices)
        sampler = self.sampler
        guided = sampler.guidance_scale > 1
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        kwargs: dict[str, Any] = dict(
            prompt_embeds=self.prompt_embeddings(batch),
            negative_prompt_embeds=self.negative_embeddings(batch.negative_prompt, count)
            if guided else None,
            num_inference_steps=sampler.steps, guidance_scale=sampler.guidance_scale,
            eta=sampler.eta, generator=generators, output_type="np")
        if self._lora_scale is not None:
            kwargs["cross_attention_kwargs"] = {"scale": self._lora_scale}
        if batch.init_images is not None:
            result = self._img2img_pipeline()(image=self._init_images(batch.init_images),
                                              strength=batch.strength, **kwargs)
        else:
            result = self.pipe(height=self.size, width=self.size, **kwargs)
        return to_uint8(result.images, batch.indices)


def to_uint8(images: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) floats in [0, 1] -> (B, 3, H, W) uint8, as diffusers rounds for PIL."""
    images = np.asarray(images, dtype=np.float32)
    bad = ~np.isfinite(images).reshape(len(images), -1).all(axis=1)
    if bad.any():
        raise ValueError(f"objects {np.asarray(indices)[bad][:5].tolist()} came out with NaN "
                         "pixels (fp16 overflow?): use runtime.precision bf16 or fp32")
    pixels = (np.clip(images, 0.0, 1.0) * 255).round().astype(np.uint8)
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))


def load_sd(model: Any, sampler: Any, runtime: Any, *, size: int | None) -> SDGenerator:
    folder = _pipeline_folder(model.path, "model.path")
    identity = {"kind": "sd", "class": "StableDiffusionPipeline",
                "files": {"pipeline": str(folder.resolve())}}
    return SDGenerator(_load_pipeline(folder, runtime), sampler, runtime, size=size,
                       identity=identity)


def load_sd_lora(model: Any, sampler: Any, runtime: Any, *, size: int | None) -> SDGenerator:
    base = _pipeline_folder(model.base, "model.base")
    lora = Path(resolve_weights(model.path, field="model.path")) if model.path else None
    if lora is None:
        raise ValueError(f"model.path is empty: give the LoRA folder (with {LORA_FILE}) or "
                         "its .safetensors file")
    weights = lora / LORA_FILE if lora.is_dir() else lora
    if not weights.is_file():
        raise FileNotFoundError(f"model.path: no LoRA weights at {weights} (a LoRA training "
                                f"run writes OUTPUT/lora/{LORA_FILE})")
    pipe = _load_pipeline(base, runtime)
    pipe.load_lora_weights(str(weights.parent), weight_name=weights.name)
    if model.fuse_lora:
        pipe.fuse_lora(lora_scale=model.lora_scale)
        pipe.unload_lora_weights()  # the fused weights stay; the LoRA layers go
    identity = {"kind": "sd_lora", "class": "StableDiffusionPipeline + LoRA",
                "files": {"base": str(base.resolve()), "lora": str(weights.resolve())},
                "lora_scale": model.lora_scale, "fused": model.fuse_lora}
    return SDGenerator(pipe, sampler, runtime, size=size, identity=identity,
                       lora_scale=None if model.fuse_lora else model.lora_scale)
