"""Model-space images as pictures: what every family's sample grids show."""

from __future__ import annotations

import numpy as np


def to_display(stretched: np.ndarray, *, flux: bool) -> np.ndarray:
    """Model-space images (N, C, H, W) -> uint8 (N, 1|3, H, W) for sample grids.

    uint8 stores are RGB already. Flux stores: the three reddest bands as R, G, B
    (g, r, i -> B, G, R), one or two bands as grey (their mean)."""
    x = np.asarray(stretched, dtype=np.float32)
    channels = x.shape[1]
    if channels >= 3:
        x = x[:, [channels - 1, channels - 2, channels - 3]] if flux else x[:, :3]
    else:
        x = x.mean(axis=1, keepdims=True)
    return (np.clip((x + 1) / 2, 0, 1) * 255).round().astype(np.uint8)


def to_rgb(images: np.ndarray, stretch: object = None) -> np.ndarray:
    """Images as a store or generator holds them -> (N, 3, H, W) uint8 for a PNG.

    uint8 images are RGB (or grey) already; float images (flux) go through `stretch`
    (a galaxy_hpc.data.stretch object: forward maps to [-1, 1]) and `to_display`."""
    x = np.asarray(images)
    if x.dtype == np.uint8:
        shown = x[:, :3] if x.shape[1] >= 3 else x[:, :1]
    else:
        if stretch is None:
            raise ValueError("float images need a stretch to be shown")
        shown = to_display(np.asarray(stretch.forward(x.astype(np.float32))), flux=True)
    if shown.shape[1] == 1:
        shown = np.repeat(shown, 3, axis=1)
    return np.ascontiguousarray(shown)
