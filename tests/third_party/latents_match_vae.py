"""Check a latent store of `galaxy-hpc encode` against diffusers' own VAE, with plain zarr.

    python latents_match_vae.py STORE.zarr LATENTS.zarr SD_FOLDER ITEM [ITEM ...]

For each item and each of the 8 transforms (a left-right flip when k >= 4, then k mod 4
quarter turns counter-clockwise: numpy's rot90 over the (y, x) axes taken as (x, y), since
y points up in our images), the image as training feeds it (x / 127.5 - 1) goes through
`AutoencoderKL.from_pretrained(SD_FOLDER, subfolder="vae").encode`; its posterior mean and
log-variance are compared with the stored channels. Prints one JSON line: the largest
absolute differences, and the scaling factor the VAE's config states.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
import zarr
from diffusers import AutoencoderKL


def transformed(image: np.ndarray, k: int) -> np.ndarray:
    out = image[..., ::-1] if k >= 4 else image
    return np.rot90(out, k % 4, axes=(-1, -2))  # x towards y: counter-clockwise, y up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("latents")
    parser.add_argument("model")
    parser.add_argument("items", type=int, nargs="+")
    args = parser.parse_args()
    images = zarr.open_group(args.store, mode="r")["images"]
    latents = zarr.open_group(args.latents, mode="r")["images"]
    vae = AutoencoderKL.from_pretrained(args.model, subfolder="vae").eval()
    channels = vae.config.latent_channels
    worst_mean = worst_logvar = 0.0
    for item in args.items:
        pixels = images[item].astype(np.float32) / 127.5 - 1.0
        stored = latents[item]
        for k in range(8):
            x = torch.from_numpy(np.ascontiguousarray(transformed(pixels, k)))[None]
            with torch.no_grad():
                posterior = vae.encode(x).latent_dist
            first = 2 * k * channels
            mean = stored[first:first + channels]
            logvar = stored[first + channels:first + 2 * channels]
            worst_mean = max(worst_mean, float(np.abs(mean - posterior.mean[0].numpy()).max()))
            worst_logvar = max(worst_logvar,
                               float(np.abs(logvar - posterior.logvar[0].numpy()).max()))
    assert not any(name.split(".")[0] in ("galaxy_hpc", "hpc") for name in sys.modules)
    print(json.dumps({"max_mean_diff": worst_mean, "max_logvar_diff": worst_logvar,
                      "scaling_factor": vae.config.scaling_factor, "items": len(args.items)}))


if __name__ == "__main__":
    main()
