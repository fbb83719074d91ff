"""Stage 2 of latent diffusion: a conditional UNet in a frozen VAE's latent space
(`kind: train_ldm_unet`).

The trainable module holds the UNet2DConditionModel and the ConditionEncoder
(condition.py); stage 1's VAE stays outside it and encodes each batch in
`prepare_batch`, without gradients, into unit-scale latents (z - shift) * scale.
Conditions are the store columns in `data.condition_columns` (default: the 37 GZ2
vote fractions). With probability `model.condition.dropout` an example's condition
is replaced by the encoder's learned null tokens, so one model is both conditional
and unconditional, as classifier-free guidance needs. The loss is the shared
diffusion loss (galaxy_hpc/models/diffusion_loss.py).

Export: `<output_dir>/pipeline`, a GalaxyLDMPipeline folder (pipeline.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.models.diffusion_loss import diffusion_loss
from galaxy_hpc.models.ldm.condition import (
    ConditionEncoder,
    column_statistics,
    prototype_conditions,
    unet_inputs,
)
from galaxy_hpc.models.display import to_display
from galaxy_hpc.models.ldm.images import read_vae_info
from galaxy_hpc.models.contract import ModelFamily
from hpc.files import follow_umask, loading_from
from hpc.hub import resolve_weights


class LatentUNetTrainModule(torch.nn.Module):
    """forward(batch) -> loss, from unit-scale `latents` (B, c, h, w) and raw `conditions`
    (B, K)."""

    def __init__(self, unet: Any, condition_encoder: ConditionEncoder, noise_scheduler: Any, *,
                 condition_dropout: float, prediction_type: str, noise_offset: float,
                 snr_gamma: float | None) -> None:
        super().__init__()
        self.unet = unet
        self.condition_encoder = condition_encoder
        # A plain tensor, not a buffer: bf16 engines would round it.
        self._alphas_cumprod = noise_scheduler.alphas_cumprod.clone().float()
        self.condition_dropout = condition_dropout
        self.prediction_type = prediction_type
        self.noise_offset = noise_offset
        self.snr_gamma = snr_gamma

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        latents, conditions = batch["latents"], batch["conditions"]
        # Validation (eval mode) measures the conditional loss: no condition is dropped.
        rate = self.condition_dropout if self.training else 0.0
        drop = torch.rand(latents.shape[0], device=latents.device) < rate
        inputs = unet_inputs(self.unet, self.condition_encoder(conditions, drop=drop))
        return diffusion_loss(
            lambda noisy, t: self.unet(noisy.to(self.unet.dtype), t, **inputs).sample,
            latents, self._alphas_cumprod, prediction_type=self.prediction_type,
            noise_offset=self.noise_offset, snr_gamma=self.snr_gamma)


def load_frozen_vae(path: str, store: Any) -> tuple[Any, dict[str, Any] | None]:
    """Stage 1's AutoencoderKL (and its galaxy_hpc_vae.json), checked against the store."""
    from diffusers import AutoencoderKL

    folder = Path(resolve_weights(path, field="model.vae_path"))
    if not path or not (folder / "config.json").is_file():
        raise ValueError(f"model.vae_path must be stage 1's AutoencoderKL folder (the vae/ "
                         f"folder of a train_ldm_vae run), got {path!r}")
    with loading_from(f"model.vae_path {folder} cannot be loaded", folder):
        vae = AutoencoderKL.from_pretrained(folder)
    info = read_vae_info(folder)
    channels, height, width = store.spec.image_shape
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    if vae.config.in_channels != channels:
        raise ValueError(f"{folder} encodes {vae.config.in_channels}-band images, the store "
                         f"{store.path} has {channels} bands: train stage 1 on this store")
    if height % factor or width % factor:
        raise ValueError(f"the store's {height}x{width} images are not multiples of the "
                         f"VAE's downsampling factor {factor}")
    if info is None:
        print(f"note: {folder} has no galaxy_hpc_vae.json: using the scaling_factor in its "
              f"config ({vae.config.scaling_factor}), not one measured on this data",
              file=sys.stderr)
    return vae, info


def _check_stretch(stage1: dict[str, Any] | None, stretch: Any, store_path: Any) -> None:
    """The VAE learned one stretch of the pixels; stage 2's dataset must feed the same."""
    if not stage1:
        return
    ours, theirs = stretch.to_dict(), stage1["stretch"]
    if ours.get("kind") != theirs.get("kind"):
        raise ValueError(f"stage 1 trained on {theirs.get('kind')} images, the store "
                         f"{store_path} gives {ours.get('kind')}: train stage 1 on this store")
    for key in ("softening", "lower", "upper"):
        if key in ours and not np.allclose(ours[key], theirs[key], rtol=1e-3, atol=0):
            print(f"warning: the store {store_path} is stretched differently from stage 1's "
                  f"store ({key} {ours[key]} vs {theirs[key]}); the VAE sees slightly "
                  "different values than it was trained on", file=sys.stderr)
            return


def build_unet(model: Any, vae_config: Any, image_shape: tuple[int, int, int]) -> Any:
    """The UNet2DConditionModel of the config, sized to the VAE's latents of the store's
    images; with global_embedding, the mean condition token is added to the timestep
    embedding (class_embed_type "projection")."""
    from diffusers import UNet2DConditionModel

    factor = 2 ** (len(vae_config.block_out_channels) - 1)
    _, height, width = image_shape
    size = height // factor if height == width else (height // factor, width // factor)
    pooled = model.condition.global_embedding
    return UNet2DConditionModel(
        sample_size=size, in_channels=vae_config.latent_channels,
        out_channels=vae_config.latent_channels, block_out_channels=tuple(model.block_out_channels),
        down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D"
                               for a in model.attention),
        up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D"
                             for a in reversed(model.attention)),
        layers_per_block=model.layers_per_block, norm_num_groups=model.norm_num_groups,
        cross_attention_dim=model.cross_attention_dim,
        # diffusers' `attention_head_dim` is the number of heads per block.
        attention_head_dim=tuple(c // model.head_channels for c in model.block_out_channels),
        class_embed_type="projection" if pooled else None,
        projection_class_embeddings_input_dim=model.cross_attention_dim if pooled else None)


class LDMUNetFamily(ModelFamily):
    def build(self) -> torch.nn.Module:
        from diffusers import DDPMScheduler

        cfg, model = self.cfg, self.cfg.model
        columns = list(cfg.data.condition_columns)
        if not columns:
            raise ValueError("data.condition_columns is empty: list the store columns to "
                             "condition on (default: the 37 GZ2 vote fractions)")
        vae, info = load_frozen_vae(model.vae_path, self.store)
        _check_stretch(info, self.stretch, self.store.path)
        self.vae = vae.requires_grad_(False).to(self.device).eval()
        if self.dtype != torch.float32:
            self.vae.to(self.dtype)
        self.vae_path = model.vae_path
        values = np.stack([self.store.read_column(c) for c in columns], axis=1).astype(np.float64)
        mean, std = column_statistics(values)
        if model.sample_conditions is not None:  # (their width is checked by the config)
            self.sample_conditions = np.asarray(model.sample_conditions, dtype=np.float32)
        else:
            self.sample_conditions = prototype_conditions(columns, values)[1]
        encoder = ConditionEncoder(
            num_conditions=len(columns), num_tokens=model.condition.num_tokens,
            embed_dim=model.cross_attention_dim, hidden_dim=model.condition.hidden_dim,
            condition_names=columns, mean=mean, std=std)
        unet = build_unet(model, vae.config, tuple(self.store.spec.image_shape))
        if cfg.run.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        self.noise_scheduler = DDPMScheduler(
            num_train_timesteps=model.num_train_timesteps, beta_schedule=model.beta_schedule,
            beta_start=model.beta_start, beta_end=model.beta_end,
            prediction_type=model.prediction_type, clip_sample=False,
            # Both travel in the exported scheduler's config to every sampler.
            rescale_betas_zero_snr=model.zero_terminal_snr,
            timestep_spacing="trailing" if model.zero_terminal_snr else "leading")
        self.unet_config, self.encoder_config = dict(unet.config), dict(encoder.config)
        return LatentUNetTrainModule(
            unet, encoder, self.noise_scheduler, condition_dropout=model.condition.dropout,
            prediction_type=model.prediction_type, noise_offset=model.noise_offset,
            snr_gamma=model.snr_gamma)

    @torch.no_grad()
    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        pixels = batch["pixel_values"].to(self.device, self.vae.dtype)
        latents = self.vae.encode(pixels).latent_dist.sample().float()
        config = self.vae.config
        return {"latents": (latents - (config.shift_factor or 0.0)) * config.scaling_factor,
                "conditions": batch["conditions"].to(self.device, torch.float32),
                "index": batch["index"]}

    def _pipeline(self, unet: Any, encoder: Any, vae: Any) -> Any:
        from diffusers import DPMSolverMultistepScheduler

        from galaxy_hpc.models.ldm.pipeline import GalaxyLDMPipeline

        scheduler = DPMSolverMultistepScheduler.from_config(self.noise_scheduler.config)
        return GalaxyLDMPipeline(vae=vae, unet=unet, condition_encoder=encoder,
                                 scheduler=scheduler, stretch=self.stretch.to_dict())

    @torch.no_grad()
    def sample(self, module: torch.nn.Module, num_images: int, seed: int) -> np.ndarray:
        """Condition k % P for image k (P prototypes): with a square grid of P columns,
        each column is one prototype."""
        model = self.cfg.model
        pipeline = self._pipeline(module.unet, module.condition_encoder, self.vae)
        pipeline.set_progress_bar_config(disable=True)
        count = len(self.sample_conditions)
        conditions = self.sample_conditions[np.arange(num_images) % count]
        result = pipeline(conditions, num_inference_steps=model.sample_steps,
                          guidance_scale=model.guidance_scale,
                          generator=torch.Generator().manual_seed(seed))
        return to_display(result.stretched, flux=self.data.flux)

    def export(self, state_dict: dict[str, torch.Tensor], output_dir: Path) -> Path:
        from diffusers import AutoencoderKL, UNet2DConditionModel

        unet = UNet2DConditionModel.from_config(self.unet_config)
        encoder = ConditionEncoder.from_config(self.encoder_config)
        for prefix, part in (("unet.", unet), ("condition_encoder.", encoder)):
            part.load_state_dict({k[len(prefix):]: v.float() for k, v in state_dict.items()
                                  if k.startswith(prefix)}, strict=True)
        vae = AutoencoderKL.from_pretrained(self.vae_path)  # the float32 original
        target = output_dir / "pipeline"
        self._pipeline(unet, encoder, vae).save_pretrained(target)
        follow_umask(target)
        return target

    def describe(self) -> str:
        columns = len(self.cfg.data.condition_columns)
        return f"ldm-unet ({columns} conditions, p_drop={self.cfg.model.condition.dropout})"
