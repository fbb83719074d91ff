"""The denoising loss of DDPM-style training, shared by the diffusion families.

    loss = diffusion_loss(lambda noisy, t: unet(noisy, t, context).sample, latents,
                          alphas_cumprod, prediction_type="epsilon")

Same maths as diffusers' text-to-image training (and the SD family's module):
Gaussian noise, optionally with an offset per (image, channel) so that the model
can learn very dark or very bright images; a timestep drawn uniformly per image;
an epsilon or v-prediction target; optional Min-SNR-gamma weighting (Hang et al.
2023). Randomness comes from the global torch RNG, which the training loop seeds
per micro-step, so resumed runs draw the same noise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

PredictionType = Literal["epsilon", "v_prediction"]


def add_noise(latents: torch.Tensor, alphas_cumprod: torch.Tensor, *,
              noise_offset: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                  torch.Tensor]:
    """(noisy latents, timesteps, noise, alpha-bar per image (B, 1, 1, 1)), all float32."""
    latents = latents.float()
    noise = torch.randn_like(latents)
    if noise_offset:
        noise = noise + noise_offset * torch.randn(latents.shape[0], latents.shape[1], 1, 1,
                                                   device=latents.device)
    timesteps = torch.randint(0, len(alphas_cumprod), (latents.shape[0],), device=latents.device)
    alphas = alphas_cumprod.to(latents.device, torch.float32)[timesteps].view(-1, 1, 1, 1)
    noisy = alphas.sqrt() * latents + (1 - alphas).sqrt() * noise
    return noisy, timesteps, noise, alphas


def diffusion_loss(denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   latents: torch.Tensor, alphas_cumprod: torch.Tensor, *,
                   prediction_type: PredictionType = "epsilon", noise_offset: float = 0.0,
                   snr_gamma: float | None = None) -> torch.Tensor:
    """Mean over the batch of the (weighted) MSE between `denoise(noisy, timesteps)` and
    the target. `denoise` casts to its model's dtype itself; the loss is float32."""
    noisy, timesteps, noise, alphas = add_noise(latents, alphas_cumprod,
                                                noise_offset=noise_offset)
    prediction = denoise(noisy, timesteps).float()
    if prediction_type == "epsilon":
        target = noise
    elif prediction_type == "v_prediction":  # Salimans & Ho 2022: v = sqrt(a) eps - sqrt(1-a) x0
        target = alphas.sqrt() * noise - (1 - alphas).sqrt() * latents.float()
    else:
        raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', "
                         f"got {prediction_type!r}")
    per_image = F.mse_loss(prediction, target, reduction="none").mean(dim=(1, 2, 3))
    if snr_gamma is not None:
        snr = (alphas / (1 - alphas)).view(-1)
        clipped = torch.clamp(snr, max=snr_gamma)
        per_image = per_image * (clipped / (snr + 1) if prediction_type == "v_prediction"
                                 else clipped / snr)
    return per_image.mean()
