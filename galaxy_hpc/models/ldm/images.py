"""Store images for the LDM families: the stretch, fixed sample images, display, and the
file stage 1 leaves beside its VAE for stage 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hpc.files import read_json
from hpc.store import Store

VAE_INFO = "galaxy_hpc_vae.json"  # beside config.json in stage 1's vae/ folder


def spread_indices(num_items: int, count: int) -> np.ndarray:
    """`count` item indices spread evenly over the store (deterministic)."""
    count = min(count, num_items)
    return np.unique(np.linspace(0, num_items - 1, count).round().astype(np.int64))


def stretched_images(store: Store, stretch: Any, indices: np.ndarray) -> np.ndarray:
    """(N, C, H, W) float32 in model space, as the dataset feeds them (no augmentation);
    NaN or infinite pixels are refused naming the items, as the dataset refuses them."""
    from galaxy_hpc.data.nonfinite import check_read

    images = store.read_images_at(np.asarray(indices))
    check_read(store, images, np.asarray(indices), use="training")
    return np.asarray(stretch.forward(images), dtype=np.float32)


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Pairs (N, C, H, 2W + 1): left | right with a one-pixel white line between."""
    line = np.full((*left.shape[:3], 1), 255, dtype=left.dtype)
    return np.concatenate([left, line, right], axis=3)


def write_vae_info(folder: Path, info: dict[str, Any]) -> Path:
    path = Path(folder) / VAE_INFO
    path.write_text(json.dumps(info, indent=2) + "\n")
    return path


def read_vae_info(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / VAE_INFO
    return read_json(path, "the VAE's image scaling") if path.is_file() else None
