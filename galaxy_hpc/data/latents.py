"""Cached VAE latents: the layout `galaxy-hpc encode` writes and training reads.

Why. A latent diffusion step encodes every image with the frozen VAE encoder before the
UNet sees it; on the same images every epoch. Encoding once and storing the latent
distribution (not one sample of it) removes that cost and keeps what the VAE gives: each
epoch draws a fresh sample `mean + exp(logvar / 2) * noise`, as encoding every step does.

Augmentation. Only transforms that are exact on the pixel grid can be cached: the 8
symmetries of the square (4 quarter turns, each with or without a left-right flip), each
an exact permutation of pixels. A rotation by any angle resamples the image (bilinear),
a continuum of results that no finite cache holds. Training from cached latents therefore
augments with the 8 dihedral transforms only; a config that asks for any-angle rotation
together with latents is refused (DataSection).

Layout. A latent store is an hpc.store store beside the training store, item for item
(same count, same shard size): its float32 "images" are (8 * 2 * C, h, w) for a VAE with
C latent channels downsampling by f (h = H / f): transform k's mean in channels
[2kC, 2kC + C), its log-variance in [2kC + C, 2kC + 2C). One item per training item keeps
the shards, the resume protocol and the checksum of hpc.store; reading all 8 transforms
to use one costs 8x the bytes of one, small against the encoder it replaces.
float32, not float16: SD's VAE latents have a standard deviation near 1 / 0.18215 = 5.5
before scaling (hence that factor), so means run to tens, where float16's spacing is
1/128 to 1/64; the VAE's posterior is nearly deterministic (small standard deviations),
so that rounding would be of the order of the sampling noise itself and change the
distribution trained on. (Reasoned from the published VAE's scale, not measured: no real
weights are available here; hpc.store also stores only uint8 and float32 images.)
float32 costs 4/3 of the raw uint8 images' bytes. Attributes (`encode`) name the VAE
(folder and a fingerprint of its config and weights), its scaling factor and the training
store's checksum, so that training refuses latents of another VAE or another store.

Text. When captions are fixed strings (no tag shuffling), the frozen text encoder's
output depends only on the caption: `encode` stores it once per distinct caption (and for
"", the dropped caption) in a file beside the store, `<latents>.text.npz`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.data.augment import rotate_right_angles

NUM_TRANSFORMS = 8
ATTRS_KEY = "encode"  # the latent store's attribute holding what it was encoded from
TEXT_SUFFIX = ".text.npz"


def dihedral(images: torch.Tensor, k: int) -> torch.Tensor:
    """Transform k of the 8 grid symmetries of (N, C, H, W) (square) images: a left-right
    flip when k >= 4, then (k mod 4) quarter turns counter-clockwise. Exact."""
    if not 0 <= k < NUM_TRANSFORMS:
        raise ValueError(f"dihedral transform must be in [0, {NUM_TRANSFORMS}), got {k}")
    out = images.flip(-1) if k >= 4 else images
    return rotate_right_angles(out, k % 4) if k % 4 else out


def latent_channels(store_channels: int) -> int:
    """C of a latent store whose items have `store_channels` = 8 * 2 * C channels."""
    if store_channels % (2 * NUM_TRANSFORMS):
        raise ValueError(f"{store_channels} channels is not 8 transforms x (mean, logvar)")
    return store_channels // (2 * NUM_TRANSFORMS)


def text_cache_path(latents: str | os.PathLike) -> Path:
    return Path(str(latents).rstrip("/") + TEXT_SUFFIX)


class LatentStore:
    """A latent store opened for training: what it was encoded from, and reads of the
    distributions of chosen transforms."""

    def __init__(self, path: str | os.PathLike) -> None:
        from hpc.store import open_store

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"data.latents: no such latent store {self.path} "
                                    "(write it with galaxy-hpc encode)")
        self.store = open_store(self.path)
        info = self.store.attrs.get(ATTRS_KEY)
        if not isinstance(info, dict):
            raise ValueError(f"data.latents: {self.path} is a store, but not one galaxy-hpc "
                             "encode wrote (no 'encode' attribute)")
        self.info: dict[str, Any] = info
        self.channels = latent_channels(self.store.spec.image_shape[0])

    @property
    def scaling_factor(self) -> float:
        return float(self.info["scaling_factor"])

    def check_source(self, store: Any, vae_fingerprint: str) -> None:
        """Refuse latents of another training store or another VAE (one line each)."""
        source = self.info.get("source", {})
        if source.get("checksum") != store.checksum or len(self.store) != len(store):
            raise ValueError(
                f"data.latents: {self.path} was encoded from {source.get('path')} (checksum "
                f"{_short(source.get('checksum'))}), not from data.store {store.path} "
                f"({_short(store.checksum)}): encode it with galaxy-hpc encode {store.path}")
        vae = self.info.get("vae", {})
        if vae.get("fingerprint") != vae_fingerprint:
            raise ValueError(
                f"data.latents: {self.path} was encoded with the VAE of {vae.get('path')} "
                f"(VAE {_short(vae.get('fingerprint'))}), not this model's "
                f"({_short(vae_fingerprint)}):"
                " encode again with --model set to the model being trained")

    def distributions(self, indices: np.ndarray, transforms: np.ndarray) -> tuple[np.ndarray,
                                                                                   np.ndarray]:
        """(mean, logvar), each (B, C, h, w) float32, of item indices[b] under transform
        transforms[b]."""
        items = self.store.read_images_at(np.asarray(indices, dtype=np.int64))
        c = self.channels
        first = 2 * c * np.asarray(transforms, dtype=np.int64)
        rows = np.arange(len(items))[:, None]
        mean = items[rows, first[:, None] + np.arange(c)]
        logvar = items[rows, first[:, None] + c + np.arange(c)]
        return mean, logvar


def _short(digest: Any) -> str:
    """'sha256:' and the first 12 hex digits: enough to tell two apart in a message."""
    return str(digest)[:19]


class TextCache:
    """The text encoder's hidden states per distinct caption (`encode` wrote them)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        with np.load(self.path, allow_pickle=False) as saved:
            self.hidden_states = saved["hidden_states"]
            captions = saved["captions"].tolist()
            self.fingerprint = str(saved["fingerprint"])
        self.rows = {caption: row for row, caption in enumerate(captions)}

    def lookup(self, captions: list[str]) -> np.ndarray:
        missing = [c for c in captions if c not in self.rows]
        if missing:
            raise ValueError(f"{self.path} has no text embedding for caption {missing[0]!r}: "
                             "encode the training store again")
        return self.hidden_states[[self.rows[c] for c in captions]]


def write_text_cache(path: Path, captions: list[str], hidden_states: np.ndarray,
                     fingerprint: str) -> None:
    """Written whole to a temporary name, then renamed: a killed job leaves none or all."""
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, captions=np.array(captions, dtype=str),
             hidden_states=hidden_states.astype(np.float32), fingerprint=np.array(fingerprint))
    os.replace(partial, path)
