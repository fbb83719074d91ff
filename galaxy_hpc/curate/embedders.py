"""Images -> embeddings for duplicate search, from any extractor the evaluation supports.

`pixels` (built in, no weights) is a fingerprint of the pixels themselves: the grey image
(mean of R, G, B), square-rooted (the variance-stabilising map for photon noise, so that
faint sky and galaxies weigh beside a bright star), band-passed by a difference of
Gaussians (sigma 1 and 3 px: keeps the structure a copy shares, noise included, and drops
the smooth profile that makes every centred galaxy look alike), averaged 2 x 2 and
flattened (1,024 numbers for a 64 px image; other sizes are resized to 64 px first).
It finds copies of the same cutout (shifted by a pixel, re-encoded as JPEG, flipped with
the d4 transforms), not other exposures of the same galaxy: a network's embedding (clip,
dinov2-vit-*) is the tool for that, at a stricter threshold. Random-weight networks are
no substitute: their features are not invariant to anything.

`clip` takes a transformers CLIP folder (its projected image embedding); every other name
is a torch-fidelity extractor built as `evaluate fid` builds it (its FID feature layer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

PIXEL_SIDE = 64
PIXEL_SIGMAS = (1.0, 3.0)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = int(math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def _blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, 1, H, W), edges reflected."""
    kernel = _gaussian_kernel(sigma)
    radius = (len(kernel) - 1) // 2
    out = torch.nn.functional.pad(image, (radius, radius, 0, 0), mode="reflect")
    out = torch.nn.functional.conv2d(out, kernel.view(1, 1, 1, -1))
    out = torch.nn.functional.pad(out, (0, 0, radius, radius), mode="reflect")
    return torch.nn.functional.conv2d(out, kernel.view(1, 1, -1, 1))


def pixel_fingerprint(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) uint8 -> (N, 1024) float32, mean-subtracted (not normalised)."""
    grey = images.to(torch.float32).mean(dim=1, keepdim=True).sqrt()
    if grey.shape[-2:] != (PIXEL_SIDE, PIXEL_SIDE):
        grey = torch.nn.functional.interpolate(grey, size=(PIXEL_SIDE, PIXEL_SIDE),
                                               mode="bilinear", antialias=True,
                                               align_corners=False)
    band = _blur(grey, PIXEL_SIGMAS[0]) - _blur(grey, PIXEL_SIGMAS[1])
    pooled = torch.nn.functional.avg_pool2d(band, 2).flatten(1)
    return pooled - pooled.mean(dim=1, keepdim=True)


def d4_images(images: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips and quarter turns of (N, C, H, W) images (identity first)."""
    flipped = images.flip(-1)
    return [torch.rot90(base, k, dims=(-2, -1)) for base in (images, flipped) for k in range(4)]


@dataclass
class Embedder:
    """embed(uint8 (N, 3, H, W)) -> (N, D) float32 on the CPU; `spec` keys resumed work."""

    name: str
    embed_batch: Callable[[torch.Tensor], torch.Tensor]
    spec: dict[str, Any]
    # The side of the square feature map the embedding flattens, when the embedding of a
    # flipped or turned image is that map flipped or turned (then d4 costs one embedding).
    equivariant_side: int | None = None

    def embed(self, images: torch.Tensor, transforms: str) -> np.ndarray:
        """(N, T, D): T = 8 (d4) or 1 (none) embeddings an image."""
        if transforms == "d4" and self.equivariant_side:
            side = self.equivariant_side
            maps = self.embed_batch(images.contiguous()).to(torch.float32).cpu()
            variants = d4_images(maps.view(len(maps), 1, side, side))
            return torch.stack([v.reshape(len(maps), -1) for v in variants], dim=1).numpy()
        variants = d4_images(images) if transforms == "d4" else [images]
        out = [self.embed_batch(v.contiguous()).to(torch.float32).cpu() for v in variants]
        return torch.stack(out, dim=1).numpy()


def build_embedder(name: str, *, weights: str | None, extractor_module: str | None,
                   device: torch.device) -> Embedder:
    from galaxy_hpc.evaluate.extractors import fingerprint

    if name == "pixels":
        if weights is not None:
            raise ValueError("extractor 'pixels' takes no --weights")
        # Grey, square root, resize to a square, symmetric blurs with reflected edges and
        # 2 x 2 pooling of an even side all commute with flips and quarter turns.
        return Embedder(name, pixel_fingerprint,
                        {"name": name, "side": PIXEL_SIDE, "sigmas": list(PIXEL_SIGMAS)},
                        equivariant_side=PIXEL_SIDE // 2)
    if name == "clip":
        from galaxy_hpc.evaluate.clip_local import load_clip

        if weights is None:
            raise ValueError("extractor 'clip' needs --weights CLIP_FOLDER (CLIPModel and "
                             "CLIPProcessor save_pretrained); nothing is downloaded")
        clip = load_clip(weights, device)
        return Embedder(name, clip.image_embeddings,
                        {"name": name, "weights_fingerprint": fingerprint(weights)})
    from galaxy_hpc.evaluate.extractors import build_extractor, extract

    module, spec = build_extractor(name, ["fid"], weights=weights,
                                   extractor_module=extractor_module, device=device)
    layer = spec.layers["fid"]
    return Embedder(name, lambda batch: extract(module, batch, device)[layer],
                    {**spec.to_dict(), "weights": None, "layer": layer})
