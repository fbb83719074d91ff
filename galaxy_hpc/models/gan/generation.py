"""The conditional-GAN generator: rows of (redshift, log stellar mass, ...) to galaxies in
the training store's units, one forward pass per batch and no sampler.

The generator folder a train_gan run writes (galaxy_hpc.models.gan.generator) holds the
network, the condition normalisation and the store's stretch; object k's latent vector
and pixel noise come only from seeds[k]. The network always sees batches of the same
shape (`model.options.batch_size`, 64 by default, the last one padded), because a
different batch shape can change float rounding and so the catalog's bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.models.contract import ConditionBatch
from hpc.hub import resolve_weights


class GANGenerator:
    condition_kind = "vector"
    uses_sampler = False
    supports_init_images = False

    def __init__(self, gan: Any, folder: Path, batch_size: int) -> None:
        self.gan = gan
        self.folder = folder
        self.batch_size = batch_size
        self.condition_names = gan.condition_names
        self.image_shape = gan.image_shape
        self.image_dtype = gan.image_dtype

    def identity(self) -> dict[str, Any]:
        return {"kind": "gan", "class": type(self.gan).__name__,
                "files": {"generator": str(self.folder.resolve())},
                "stretch": self.gan.stretch.to_dict(), "batch_size": self.batch_size}

    def sampler_provenance(self) -> None:
        return None

    def generate(self, batch: ConditionBatch, seeds: np.ndarray) -> np.ndarray:
        if batch.vectors is None:
            raise ValueError(f"a GAN catalog needs numeric conditions ({self.condition_names}; "
                             "conditions.columns)")
        values = self.gan.generate(batch.vectors, [int(s) for s in seeds],
                                   batch_size=self.batch_size)
        if self.image_dtype == "uint8":
            return np.clip(values, 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(values, dtype=np.float32)


def load_gan(model: Any, sampler: Any, runtime: Any, *, size: int | None) -> GANGenerator:
    from galaxy_hpc.models.gan.generator import load_generator

    if not model.path:
        raise ValueError("model.path is empty: give a GAN generator folder (the generator/ "
                         "of a train_gan run)")
    folder = Path(resolve_weights(model.path, field="model.path"))
    if not folder.is_dir():
        raise FileNotFoundError(f"model.path: {folder} does not exist")
    gan = load_generator(folder, runtime.device)
    side = gan.image_shape[-1]
    if size is not None and size != side:
        raise ValueError(f"size {size}: this GAN makes {side}x{side} images only; set size: null")
    batch_size = int(model.options.get("batch_size", 64))
    if batch_size < 1:
        raise ValueError(f"model.options.batch_size must be >= 1, got {batch_size}")
    return GANGenerator(gan, folder, batch_size)
