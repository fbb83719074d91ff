"""Stage 1 of latent diffusion: an AutoencoderKL trained on a store (`kind: train_ldm_vae`).

Loss per batch, all terms means over the batch:

    |x - D(z)|  (L1, or squared for mse; mean per pixel)
    + kl_weight * KL(q(z|x) || N(0, I)) / (pixels of an image)
    + perceptual.weight * perceptual(D(z), x)        (optional; perceptual.py)

with z sampled from q(z|x). Dividing the summed KL by the pixel count makes kl_weight
mean what it means in LDM's configs, which sum both terms per image. No adversarial
term (LDM's autoencoders add a patch discriminator after some steps; not here).

Any store works: the VAE's in/out channels are the store's bands, and images arrive
through the dataset's stretch in [-1, 1] (uint8 RGB, or float32 flux asinh-stretched).

Export: `<output_dir>/vae`, an AutoencoderKL folder (save_pretrained). Its config
carries LDM's latent rescaling measured on the data: with z sampled from q(z|x) for
`scaling_num_items` store images, shift_factor = mean(z), scaling_factor = 1 / std(z),
so that stage 2 diffuses (z - shift) * scale, which has unit variance. Beside it,
galaxy_hpc_vae.json keeps the store's stretch, the latent statistics and the
reconstruction error of the exported weights on those images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.models.display import to_display
from galaxy_hpc.models.ldm.images import (
    side_by_side,
    spread_indices,
    stretched_images,
    write_vae_info,
)
from galaxy_hpc.models.ldm.perceptual import build_perceptual
from galaxy_hpc.models.contract import ModelFamily
from hpc.files import follow_umask, loading_from
from hpc.hub import resolve_weights

ENCODE_BATCH = 32  # images per forward pass when measuring the latents at export


class VaeTrainModule(torch.nn.Module):
    """forward(batch) -> loss. Holds only the VAE; the perceptual network (if any) is kept
    outside the module's parameters: frozen, never checkpointed nor partitioned."""

    def __init__(self, vae: Any, *, reconstruction: str, kl_weight: float,
                 perceptual: torch.nn.Module | None, perceptual_weight: float) -> None:
        super().__init__()
        self.vae = vae
        self.reconstruction = reconstruction
        self.kl_weight = kl_weight
        self._perceptual = (perceptual,)  # a tuple: not registered as a submodule
        self.perceptual_weight = perceptual_weight

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss, its terms): the loop logs reconstruction, KL and perceptual separately."""
        x = batch["pixel_values"]
        posterior = self.vae.encode(x.to(self.vae.dtype)).latent_dist
        reconstruction = self.vae.decode(posterior.sample()).sample
        error = reconstruction.float() - x.float()
        rec = error.abs().mean() if self.reconstruction == "l1" else error.pow(2).mean()
        kl = posterior.kl().float().mean() / x[0].numel()
        loss = rec + self.kl_weight * kl if self.kl_weight else rec
        terms = {"reconstruction": rec.detach(), "kl_per_pixel": kl.detach()}
        perceptual = self._perceptual[0]
        if perceptual is not None:
            term = perceptual(reconstruction, x.to(reconstruction.dtype))
            loss = loss + self.perceptual_weight * term
            terms["perceptual"] = term.detach()
        return loss, terms


def build_vae(model: Any, image_shape: tuple[int, int, int]) -> Any:
    """A new AutoencoderKL for the store's (C, H, W), or the `init_from` folder's."""
    from diffusers import AutoencoderKL

    channels, height, width = image_shape
    if model.init_from:
        folder = Path(resolve_weights(model.init_from, field="model.init_from"))
        if not (folder / "config.json").is_file():
            raise ValueError(f"model.init_from: {folder} is not an AutoencoderKL folder "
                             "(no config.json); nothing is downloaded")
        with loading_from(f"model.init_from {folder} cannot be loaded", folder):
            vae = AutoencoderKL.from_pretrained(folder)
        if vae.config.in_channels != channels or vae.config.out_channels != channels:
            raise ValueError(f"model.init_from: {folder} has {vae.config.in_channels} channels, "
                             f"the store's images have {channels}")
    else:
        levels = len(model.block_out_channels)
        vae = AutoencoderKL(
            in_channels=channels, out_channels=channels, latent_channels=model.latent_channels,
            down_block_types=("DownEncoderBlock2D",) * levels,
            up_block_types=("UpDecoderBlock2D",) * levels,
            block_out_channels=tuple(model.block_out_channels),
            layers_per_block=model.layers_per_block, norm_num_groups=model.norm_num_groups,
            sample_size=height, mid_block_add_attention=model.mid_block_attention)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    if height % factor or width % factor:
        raise ValueError(f"the store's images are {height}x{width}: the VAE downsamples "
                         f"{factor}x, so both sides must be multiples of {factor} (re-ingest "
                         "with another --size, or change model.block_out_channels)")
    return vae


@torch.no_grad()
def latent_statistics(vae: Any, images: np.ndarray, *, device: torch.device,
                      seed: int = 0) -> dict[str, float]:
    """Mean and std of z ~ q(z|x) over `images`, and the L1/MSE of D(mode(z)) against them."""
    generator = torch.Generator().manual_seed(seed)
    count = total = total_sq = 0.0
    l1 = mse = 0.0
    for start in range(0, len(images), ENCODE_BATCH):
        x = torch.from_numpy(images[start:start + ENCODE_BATCH]).to(device, vae.dtype)
        posterior = vae.encode(x).latent_dist
        z = posterior.sample(generator=generator).double()
        count += z.numel()
        total += float(z.sum())
        total_sq += float(z.pow(2).sum())
        error = vae.decode(posterior.mode()).sample.double() - x.double()
        l1 += float(error.abs().sum())
        mse += float(error.pow(2).sum())
    mean = total / count
    std = max(total_sq / count - mean * mean, 0.0) ** 0.5
    pixels = float(images.size)
    return {"latent_mean": mean, "latent_std": std, "reconstruction_l1": l1 / pixels,
            "reconstruction_mse": mse / pixels}


class LDMVaeFamily(ModelFamily):
    def build(self) -> torch.nn.Module:
        model = self.cfg.model
        vae = build_vae(model, tuple(self.store.spec.image_shape))
        self.vae_config = dict(vae.config)
        vae.train()
        if self.cfg.run.gradient_checkpointing:
            vae.enable_gradient_checkpointing()
        perceptual = build_perceptual(model.perceptual)
        if perceptual is not None:
            perceptual.to(self.device, self.dtype)
        return VaeTrainModule(vae, reconstruction=model.reconstruction_loss,
                              kl_weight=model.kl_weight, perceptual=perceptual,
                              perceptual_weight=model.perceptual.weight)

    @torch.no_grad()
    def sample(self, module: torch.nn.Module, num_images: int, seed: int) -> np.ndarray:
        """Input | reconstruction (posterior mode) pairs of fixed store images."""
        images = stretched_images(self.store, self.stretch,
                                  spread_indices(len(self.store), num_images))
        vae = module.vae
        x = torch.from_numpy(images).to(self.device, vae.dtype)
        decoded = vae.decode(vae.encode(x).latent_dist.mode()).sample.float().cpu().numpy()
        return side_by_side(to_display(images, flux=self.data.flux), to_display(decoded, flux=self.data.flux))

    def export(self, state_dict: dict[str, torch.Tensor], output_dir: Path) -> Path:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_config(self.vae_config)
        vae.load_state_dict({k[len("vae."):]: v.float() for k, v in state_dict.items()
                             if k.startswith("vae.")}, strict=True)
        vae.to(self.device).eval()
        indices = spread_indices(len(self.store), self.cfg.model.scaling_num_items)
        stats = latent_statistics(vae, stretched_images(self.store, self.stretch, indices),
                                  device=self.device, seed=self.cfg.run.seed)
        if not stats["latent_std"] > 0:
            raise ValueError("the trained VAE's latents have zero spread: no scaling factor "
                             "exists (training diverged or collapsed; lower optim.lr)")
        vae.register_to_config(scaling_factor=1.0 / stats["latent_std"],
                               shift_factor=stats["latent_mean"])
        target = output_dir / "vae"
        vae.to("cpu").save_pretrained(target)
        write_vae_info(target, {
            "store": str(self.store.path), "image_shape": list(self.store.spec.image_shape),
            "image_dtype": self.store.spec.image_dtype, "stretch": self.stretch.to_dict(),
            "scaling_num_items": len(indices), **stats,
            "scaling_factor": 1.0 / stats["latent_std"], "shift_factor": stats["latent_mean"]})
        follow_umask(target)
        return target

    def describe(self) -> str:
        config = self.vae_config if hasattr(self, "vae_config") else None
        if config is None:
            return "ldm-vae"
        factor = 2 ** (len(config["block_out_channels"]) - 1)
        return f"ldm-vae (f={factor}, {config['latent_channels']} latent channels)"
