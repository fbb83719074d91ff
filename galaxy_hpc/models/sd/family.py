"""Stable Diffusion 1.5 as a training family: full fine-tuning or LoRA, on captions.

The trainable module holds the UNet (and the text encoder when it is trained);
the VAE, and the text encoder when frozen, stay outside it and encode batches
in `prepare_batch` without gradients. The loss follows diffusers' text-to-image
training: noise (with an optional offset), a uniform timestep, epsilon or
v-prediction targets, optional Min-SNR weighting.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.models.diffusion_loss import diffusion_loss
from galaxy_hpc.models.lora import lora_config, write_base_record
from galaxy_hpc.models.sd.components import (
    SDComponents,
    load_components,
    save_pipeline,
    tiny_components,
)
from galaxy_hpc.models.contract import ModelFamily
from galaxy_hpc.models.sd.latent_cache import CachedLatents
from hpc.files import follow_umask


class SDTrainModule(torch.nn.Module):
    """forward(batch) -> loss. Holds only what is trained (UNet, optionally text encoder)."""

    def __init__(self, unet: Any, text_encoder: Any | None, noise_scheduler: Any, *,
                 prediction_type: str, noise_offset: float, snr_gamma: float | None) -> None:
        super().__init__()
        self.unet = unet
        self.text_encoder = text_encoder
        # Kept out of the module's buffers so bf16 engines do not round them.
        self._alphas_cumprod = noise_scheduler.alphas_cumprod.clone().float()
        self.prediction_type = prediction_type
        self.noise_offset = noise_offset
        self.snr_gamma = snr_gamma

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        if self.text_encoder is not None:
            context = self.text_encoder(batch["input_ids"])[0]
        else:
            context = batch["encoder_hidden_states"]
        dtype = next(self.unet.parameters()).dtype
        return diffusion_loss(
            lambda noisy, t: self.unet(noisy.to(dtype), t, context.to(dtype)).sample,
            batch["latents"], self._alphas_cumprod, prediction_type=self.prediction_type,
            noise_offset=self.noise_offset, snr_gamma=self.snr_gamma)


class SDFamily(ModelFamily):
    def build(self) -> torch.nn.Module:
        model = self.cfg.model
        if model.tiny:
            captions = list(self.store.read_column(self.cfg.data.caption_column))
            parts = tiny_components(captions=captions, image_size=self.store.spec.image_shape[-1],
                                    seed=self.cfg.run.seed)
        else:
            trained = ("unet", "text_encoder") if model.train_text_encoder else ("unet",)
            parts = load_components(model.pretrained_model_name_or_path,
                                    partitioned=trained if self.partition else (),
                                    partition=self.partition)
        self.parts: SDComponents = parts
        self.prediction_type = model.prediction_type or parts.noise_scheduler.config.prediction_type
        self.cached = self._cached_latents(parts)  # before any cast: fingerprints are of weights
        parts.vae.requires_grad_(False).to(self.device).eval()
        if self.dtype != torch.float32:  # (diffusers warns on any dtype cast of the VAE)
            parts.vae.to(self.dtype)
        unet, text_encoder = parts.unet, parts.text_encoder
        text_encoder.requires_grad_(False)
        # The frozen text encoder's weights, for exports that write it (0.5 GB for SD-1.5's);
        # None where no export needs it: a partitioned one (trained under ZeRO-3; its
        # export gathers it) or a LoRA's over a base the user has (adapters only).
        needed = not (hasattr(next(text_encoder.parameters()), "ds_tensor")
                      or (model.method == "lora" and parts.path is not None))
        self._text_base_state = ({k: v.detach().clone() for k, v in text_encoder.state_dict().items()}
                                 if needed else None)
        if model.method == "lora":
            unet.requires_grad_(False)
            self._add_adapters(unet, text_encoder)
        else:
            unet.requires_grad_(True)
            if model.train_text_encoder:
                text_encoder.requires_grad_(True)
        if self.cfg.run.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        if model.channels_last and self.device.type == "cuda":
            unet.to(memory_format=torch.channels_last)
        if model.compile:
            unet.compile()  # in place: parameter names (and checkpoints) are unchanged
        trained_text = text_encoder if model.train_text_encoder else None
        if trained_text is None:
            text_encoder.to(self.device, self.dtype).eval()
        self._check_store_resolution()
        return SDTrainModule(unet, trained_text, parts.noise_scheduler,
                             prediction_type=self.prediction_type,
                             noise_offset=model.noise_offset, snr_gamma=model.snr_gamma)

    def _cached_latents(self, parts: SDComponents) -> CachedLatents | None:
        """data.latents opened and checked against this model and the training store; its
        text states used only when captions are fixed strings and the text encoder frozen
        (shuffled tags make a new caption each step: those are encoded per step)."""
        data = self.cfg.data
        if not data.latents:
            return None
        fixed = not data.shuffle_caption_tags and not self.cfg.model.train_text_encoder
        cached = CachedLatents(data.latents, store=self.store, vae=parts.vae,
                               text_encoder=parts.text_encoder if fixed else None,
                               tokenizer=parts.tokenizer)
        factor = 2 ** (len(parts.vae.config.block_out_channels) - 1)
        _, height, width = self.store.spec.image_shape
        wanted = (16 * parts.vae.config.latent_channels, height // factor, width // factor)
        if tuple(cached.latents.store.spec.image_shape) != wanted:
            raise ValueError(f"data.latents: {data.latents} holds items of shape "
                             f"{cached.latents.store.spec.image_shape}, this VAE makes {wanted}")
        return cached

    def _check_store_resolution(self) -> None:
        store = self.store
        channels, height, width = store.spec.image_shape
        factor = 2 ** (len(self.parts.vae.config.block_out_channels) - 1)
        if channels != 3 or height % factor or width % factor:
            raise ValueError(f"{store.path}: images {channels}x{height}x{width} do not fit the "
                             f"VAE (3 channels, sides a multiple of {factor}); re-ingest with "
                             "--size a multiple of 8")
        if store.spec.image_dtype != "uint8":
            raise ValueError(f"{store.path}: Stable Diffusion trains on RGB images (uint8 stores); "
                             "this store holds float32 flux: ingest JPEG/PNG or synth without --float")

    def tokenize(self, captions: list[str]) -> torch.Tensor:
        tokenizer = self.parts.tokenizer
        return tokenizer(list(captions), padding="max_length", truncation=True,
                         max_length=tokenizer.model_max_length, return_tensors="pt").input_ids

    @torch.no_grad()
    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Latents and text states of a batch: encoded here, or drawn from data.latents
        (its cached distributions and, for fixed captions, its cached text states)."""
        if self.cached is not None:
            latents = self.cached.latents_for(batch["index"], self.device)
        else:
            pixels = batch["pixel_values"].to(self.device, self.dtype)
            latents = self.parts.vae.encode(pixels).latent_dist.sample().float() \
                * self.parts.vae.config.scaling_factor
        prepared = {"latents": latents, "index": batch["index"]}
        if self.cached is not None and self.cached.text is not None:
            prepared["encoder_hidden_states"] = self.cached.hidden_states_for(
                batch["caption"], self.device, self.dtype)
            return prepared
        input_ids = self.tokenize(batch["caption"]).to(self.device)
        if self.cfg.model.train_text_encoder:
            prepared["input_ids"] = input_ids
        else:
            prepared["encoder_hidden_states"] = self.parts.text_encoder(input_ids)[0]
        return prepared

    def _pipeline(self, module: SDTrainModule) -> Any:
        from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

        text_encoder = module.text_encoder if module.text_encoder is not None else self.parts.text_encoder
        scheduler = DPMSolverMultistepScheduler.from_config(
            self.parts.noise_scheduler.config, prediction_type=self.prediction_type)
        return StableDiffusionPipeline(
            vae=self.parts.vae, text_encoder=text_encoder, tokenizer=self.parts.tokenizer,
            unet=module.unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False)

    @torch.no_grad()
    def sample(self, module: torch.nn.Module, num_images: int, seed: int) -> np.ndarray:
        model = self.cfg.model
        prompts = [model.sample_prompts[k % len(model.sample_prompts)] for k in range(num_images)]
        pipeline = self._pipeline(module)
        pipeline.set_progress_bar_config(disable=True)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images = pipeline(prompts, num_inference_steps=model.sample_steps,
                          guidance_scale=model.guidance_scale, generator=generator,
                          output_type="np").images
        return (np.clip(images, 0, 1) * 255).round().astype(np.uint8).transpose(0, 3, 1, 2)

    def sample_recipe(self, num_images: int, seed: int) -> dict[str, Any]:
        model = self.cfg.model
        return {
            "pipeline": "StableDiffusionPipeline",
            "prompts": [model.sample_prompts[k % len(model.sample_prompts)]
                        for k in range(num_images)],
            "scheduler": "DPMSolverMultistepScheduler", "prediction_type": self.prediction_type,
            "num_inference_steps": model.sample_steps, "guidance_scale": model.guidance_scale,
            "generator": {"device": "cpu", "seed": seed, "one_for_the_batch": True},
            "output": "round(clip(np, 0, 1) * 255) as uint8",
            "redraw": "pipe.scheduler = DPMSolverMultistepScheduler.from_config("
                      "pipe.scheduler.config, prediction_type=...); pipe(prompts, "
                      "num_inference_steps=..., guidance_scale=..., generator=torch.Generator("
                      ").manual_seed(seed), output_type='np')"}

    def export_scope(self) -> str:
        # A LoRA over the user's own base needs its adapters only; a tiny model's LoRA
        # also writes the base it loads onto.
        return "trainable" if self.cfg.model.method == "lora" and self.parts.path else "all"

    def export(self, state_dict: dict[str, torch.Tensor], output_dir: Path) -> Path:
        """Full: a StableDiffusionPipeline folder. LoRA: pytorch_lora_weights.safetensors that
        `pipe.load_lora_weights(folder)` loads onto the base model."""
        if self.export_scope() == "trainable":
            target = self._export_lora(self.parts.unet, self.parts.text_encoder,
                                       output_dir / "lora", state_dict=state_dict)
            write_base_record(target, Path(self.parts.path))
            return target
        # Fresh CPU modules: the live ones may be bf16, or empty partitions under ZeRO-3.
        unet, text_encoder = self._fresh_modules()
        _load_prefixed(unet, state_dict, "unet.")
        if self.cfg.model.train_text_encoder:
            _load_prefixed(text_encoder, state_dict, "text_encoder.")
        vae = copy.deepcopy(self.parts.vae).to("cpu")
        parts = dataclasses.replace(self.parts, vae=vae if vae.dtype == torch.float32 else vae.float())
        if self.prediction_type != parts.inference_scheduler.config.prediction_type:
            parts.inference_scheduler.register_to_config(prediction_type=self.prediction_type)
        if self.cfg.model.method == "lora":
            if parts.path is None:  # a tiny model: write the base the LoRA loads onto
                base_unet, base_text = self._fresh_modules(adapters=False)
                base_unet.load_state_dict(_without_lora(state_dict, "unet."), strict=True,
                                          assign=True)
                save_pipeline(parts, output_dir / "base", unet=base_unet, text_encoder=base_text)
            target = self._export_lora(unet, text_encoder, output_dir / "lora")
            write_base_record(target, Path(parts.path) if parts.path else output_dir / "base")
            return target
        return save_pipeline(parts, output_dir / "pipeline", unet=unet, text_encoder=text_encoder)

    def _fresh_modules(self, adapters: bool = True) -> tuple[Any, Any]:
        """New CPU modules of the same architecture whose parameters are still empty
        (meta): loading a state dict with assign=True makes them hold its tensors, so an
        export keeps one whole copy of the model (SD-1.5's UNet is 3.4 GB), not two."""
        from accelerate import init_empty_weights
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextModel

        model = self.cfg.model
        with init_empty_weights(include_buffers=False):
            unet = UNet2DConditionModel.from_config(self.parts.unet.config)
            text_encoder = CLIPTextModel(self.parts.text_encoder.config)
        if not model.train_text_encoder or model.method == "lora":
            # The frozen text encoder's weights live outside the engine, whole.
            text_encoder.load_state_dict({k: v.float().cpu() for k, v in
                                          self._frozen_text_state().items()}, assign=True)
        if adapters and model.method == "lora":
            self._add_adapters(unet, text_encoder)
        return unet.float(), text_encoder.float()

    def _add_adapters(self, unet: Any, text_encoder: Any) -> None:
        """The run's LoRA adapters: on the UNet, and on the text encoder when it trains."""
        lora = self.cfg.model.lora
        unet.add_adapter(lora_config(lora))
        if self.cfg.model.train_text_encoder:
            text_encoder.add_adapter(lora_config(lora, lora.text_encoder_target_modules))

    def _frozen_text_state(self) -> dict[str, torch.Tensor]:
        """The text encoder's base weights (without LoRA layers), saved at build time."""
        return self._text_base_state

    def _export_lora(self, unet: Any, text_encoder: Any, target: Path,
                     state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """The adapters of `unet` (and `text_encoder`), from `state_dict` (the run's
        consolidated weights, "unet."/"text_encoder." prefixed) when given, else from
        the modules themselves."""
        from diffusers import StableDiffusionPipeline
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        def adapters(module: Any, prefix: str) -> dict[str, torch.Tensor]:
            own = None
            if state_dict is not None:
                own = {k[len(prefix):]: v.float() for k, v in state_dict.items()
                       if k.startswith(prefix)}
            return convert_state_dict_to_diffusers(get_peft_model_state_dict(module, state_dict=own))

        text_layers = None
        if self.cfg.model.train_text_encoder:
            text_layers = adapters(text_encoder, "text_encoder.")
        # The adapters' configs go into the file's metadata: without them diffusers
        # assumes lora_alpha == rank and loads a LoRA trained with another alpha at the
        # wrong strength (alpha / rank is the LoRA's scale).
        text_metadata = (text_encoder.peft_config["default"].to_dict()
                         if self.cfg.model.train_text_encoder else None)
        StableDiffusionPipeline.save_lora_weights(
            target, unet_lora_layers=adapters(unet, "unet."),
            text_encoder_lora_layers=text_layers, safe_serialization=True,
            unet_lora_adapter_metadata=unet.peft_config["default"].to_dict(),
            text_encoder_lora_adapter_metadata=text_metadata)
        follow_umask(target)
        return target

    def describe(self) -> str:
        model = self.cfg.model
        text = " + text encoder" if model.train_text_encoder else ""
        return f"sd-{model.method}{text}"


def _load_prefixed(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], prefix: str) -> None:
    own = {key[len(prefix):]: value.float() for key, value in state_dict.items()
           if key.startswith(prefix)}
    module.load_state_dict(own, strict=True, assign=True)


def _without_lora(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The base model's weights inside a peft-wrapped state dict: LoRA tensors dropped,
    `x.base_layer.weight` read as `x.weight`."""
    base = {}
    for key, value in state_dict.items():
        if not key.startswith(prefix) or ".lora_" in key:
            continue
        base[key[len(prefix):].replace(".base_layer.", ".")] = value.float()
    return base
