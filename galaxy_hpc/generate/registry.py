"""Generators by model kind, as import strings: what a catalog job needs from a model.

The job never knows which model family it drives. A family plugs in with one line here
(or one `register_generator` call; the conditional GAN's is gan_backend.py), naming a
loader

    load(model: ModelSection, sampler: SamplerSection, runtime: Runtime, *,
         size: int | None) -> Generator

where a Generator is any object with the attributes and method of the protocol below
(nothing to inherit or import).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

GENERATORS: dict[str, str] = {
    "sd": "galaxy_hpc.generate.sd_backend:load_sd",
    "sd_lora": "galaxy_hpc.generate.sd_backend:load_sd_lora",
    "ldm": "galaxy_hpc.generate.ldm_backend:load_ldm",
    "gan": "galaxy_hpc.generate.gan_backend:load_gan",
}


@dataclass
class ConditionBatch:
    """The conditions of one fixed batch of objects (galaxy_hpc.generate.seeds)."""

    indices: np.ndarray  # (B,) object indices
    captions: list[str] | None = None  # text generators
    # Index of each caption in `vocabulary`, the catalog-wide list of distinct captions in a
    # fixed order: lets a generator encode captions in fixed groups and cache them.
    caption_ids: np.ndarray | None = None
    vocabulary: Sequence[str] | None = None
    negative_prompt: str = ""
    vectors: np.ndarray | None = None  # (B, K) float64, vector generators
    init_images: np.ndarray | None = None  # (B, C, H, W) store images (img2img)
    strength: float = 1.0  # img2img: how far the init images are noised (1: pure noise)
    # Per-object columns the catalog records about the condition (source row, id, ...).
    columns: dict[str, np.ndarray] = field(default_factory=dict)


@runtime_checkable
class Generator(Protocol):
    condition_kind: Literal["text", "vector"]
    condition_names: list[str] | None  # vector generators: the columns, in model order
    image_shape: tuple[int, int, int]  # (C, H, W) of what generate returns
    image_dtype: str  # "uint8" (RGB) or "float32" (the training store's units, e.g. flux)
    uses_sampler: bool  # False: sampler, steps and guidance are ignored (recorded as such)
    supports_init_images: bool  # img2img

    def identity(self) -> dict[str, Any]:
        """Kind, class and files of the model: {"kind", "class", "files": {role: path}};
        the job hashes the files for the catalog's provenance."""

    def sampler_provenance(self) -> dict[str, Any] | None:
        """The scheduler actually used (class and resolved config), None without one."""

    def generate(self, batch: ConditionBatch, seeds: np.ndarray) -> np.ndarray:
        """(B, C, H, W) images of `image_dtype` for one batch; object k's randomness comes
        only from torch.Generator().manual_seed(seeds[k])."""


def register_generator(kind: str, loader: str) -> None:
    if ":" not in loader:
        raise ValueError(f"generator {kind!r}: loader must be 'module:function', got {loader!r}")
    GENERATORS[kind] = loader


def load_generator(model: Any, sampler: Any, runtime: Any, *, size: int | None) -> Generator:
    """The generator for `model.kind`, loaded onto `runtime.device`."""
    if model.kind not in GENERATORS:
        raise ValueError(f"model.kind {model.kind!r} is not a known generator; known: "
                         f"{', '.join(sorted(GENERATORS))}")
    module, _, function = GENERATORS[model.kind].partition(":")
    loader = getattr(importlib.import_module(module), function)
    generator = loader(model, sampler, runtime, size=size)
    missing = [name for name in ("condition_kind", "image_shape", "image_dtype", "generate",
                                 "identity") if not hasattr(generator, name)]
    if missing:
        raise TypeError(f"{GENERATORS[model.kind]} returned {type(generator).__name__} without "
                        f"{', '.join(missing)} (see galaxy_hpc.generate.registry.Generator)")
    return generator
