"""GalaxyLDMPipeline: galaxies from condition vectors, as a diffusers pipeline folder.

    pipe = GalaxyLDMPipeline.from_pretrained("runs/ldm_unet/pipeline")
    out = pipe(conditions=votes,                  # (N, K) raw catalog values
               num_inference_steps=25, guidance_scale=3.0,
               generator=torch.Generator().manual_seed(0))
    out.images        # (N, H, W, C) in [0, 1] for display (output_type="np")
    out.stretched     # (N, C, H, W) float32: model space, the store's stretch applied
    out.store_values  # (N, C, H, W): back through the stretch (flux for float stores)

Components: `vae` (stage 1's AutoencoderKL; its scaling_factor/shift_factor map
latents to unit scale), `unet` (UNet2DConditionModel), `condition_encoder`
(ConditionEncoder, from galaxy_hpc.models.ldm.condition: model_index.json names that
module, so loading needs galaxy_hpc importable, nothing else), `scheduler`. The
pipeline config keeps the training store's stretch (`stretch`, a
galaxy_hpc.data.stretch dict), so generated values invert exactly to the store's
units, and the condition columns live in the encoder's config (`condition_names`).

Classifier-free guidance: eps = eps(null) + s (eps(c) - eps(null)); scale 1 is
the plain conditional model (one UNet pass per step).
`eta` goes to schedulers that take it (DDIM: 0 deterministic, 1 DDPM-like noise).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from galaxy_hpc.models.ldm.condition import unet_inputs


@dataclass
class GalaxyLDMPipelineOutput(BaseOutput):
    images: Any  # np (N, H, W, C) / list of PIL / torch (N, C, H, W), display range [0, 1]
    stretched: np.ndarray  # (N, C, H, W) float32, the model's [-1, 1] space (not clipped)
    store_values: np.ndarray | None  # (N, C, H, W) float32 in the store's units, or None


class GalaxyLDMPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "condition_encoder->unet->vae"

    def __init__(self, vae: Any, unet: Any, condition_encoder: Any, scheduler: Any,
                 stretch: dict | None = None) -> None:
        super().__init__()
        self.register_modules(vae=vae, unet=unet, condition_encoder=condition_encoder,
                              scheduler=scheduler)
        self.register_to_config(stretch=dict(stretch) if stretch else None)

    @property
    def condition_names(self) -> list[str] | None:
        names = self.condition_encoder.config.condition_names
        return list(names) if names is not None else None

    @property
    def stretch(self) -> Any:
        """The training store's stretch (galaxy_hpc.data.stretch), or None if unknown."""
        from galaxy_hpc.data.stretch import stretch_from_dict

        return stretch_from_dict(self.config.stretch) if self.config.stretch else None

    def latents_to_unit(self, latents: torch.Tensor) -> torch.Tensor:
        config = self.vae.config
        return (latents - (config.shift_factor or 0.0)) * config.scaling_factor

    def unit_to_latents(self, scaled: torch.Tensor) -> torch.Tensor:
        config = self.vae.config
        return scaled / config.scaling_factor + (config.shift_factor or 0.0)

    def _conditions(self, conditions: Any, device: torch.device) -> torch.Tensor:
        values = torch.as_tensor(np.asarray(conditions, dtype=np.float32))
        if values.ndim == 1:
            values = values[None]
        expected = self.condition_encoder.config.num_conditions
        if values.ndim != 2 or values.shape[1] != expected:
            names = self.condition_names
            which = f" ({', '.join(names[:3])}, ...)" if names else ""
            raise ValueError(f"conditions must be an (N, {expected}) array of the columns the "
                             f"model was trained on{which}, got shape {tuple(values.shape)}")
        return values.to(device)

    @torch.no_grad()
    def __call__(self, conditions: Any, num_inference_steps: int = 25,
                 guidance_scale: float = 3.0, generator: torch.Generator | None = None,
                 latents: torch.Tensor | None = None, output_type: str = "np",
                 return_dict: bool = True, eta: float = 0.0) -> GalaxyLDMPipelineOutput | tuple:
        if guidance_scale < 1:
            raise ValueError(f"guidance_scale must be >= 1 (1: no guidance), got {guidance_scale}")
        if output_type not in ("np", "pil", "pt"):
            raise ValueError(f"output_type must be 'np', 'pil' or 'pt', got {output_type!r}")
        device = self._execution_device
        cond = self._conditions(conditions, device)
        count = cond.shape[0]
        guided = guidance_scale > 1
        tokens = self.condition_encoder(cond)
        if guided:
            null = self.condition_encoder(cond, drop=torch.ones(count, dtype=torch.bool))
            tokens = torch.cat([null, tokens])
        size = self.unet.config.sample_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        shape = (count, self.unet.config.in_channels, height, width)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
        latents = latents.to(device, torch.float32) * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        accepted = inspect.signature(self.scheduler.step).parameters
        step_kwargs = {name: value for name, value in (("generator", generator), ("eta", eta))
                       if name in accepted}
        context = unet_inputs(self.unet, tokens)
        for t in self.progress_bar(self.scheduler.timesteps):
            model_input = torch.cat([latents] * 2) if guided else latents
            model_input = self.scheduler.scale_model_input(model_input, t)
            prediction = self.unet(model_input.to(self.unet.dtype), t, **context).sample.float()
            if guided:
                unconditional, conditional = prediction.chunk(2)
                prediction = unconditional + guidance_scale * (conditional - unconditional)
            latents = self.scheduler.step(prediction, t, latents, **step_kwargs).prev_sample
        decoded = self.vae.decode(self.unit_to_latents(latents).to(self.vae.dtype)).sample.float()
        self.maybe_free_model_hooks()
        stretched = decoded.cpu().numpy()
        stretch = self.stretch
        values = np.asarray(stretch.inverse(stretched), dtype=np.float32) if stretch else None
        display = ((decoded + 1) / 2).clamp(0, 1).cpu()
        if output_type == "pt":
            images: Any = display
        else:
            images = display.permute(0, 2, 3, 1).numpy()
            if output_type == "pil":
                images = _to_pil(images)
        if not return_dict:
            return images, stretched, values
        return GalaxyLDMPipelineOutput(images=images, stretched=stretched, store_values=values)


def _to_pil(images: np.ndarray) -> list:
    from PIL import Image

    if images.shape[-1] not in (1, 3):
        raise ValueError(f"output_type 'pil' needs 1 or 3 bands, these images have "
                         f"{images.shape[-1]}: use 'np' (or 'pt')")
    pixels = (images * 255).round().astype(np.uint8)
    return [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in pixels]
