"""What a model family gives the training loop, and the registry of families.

The loop (loop.py) owns everything distributed: the DeepSpeed engine, data
sharding, checkpoints, EMA, logging, preemption. A family owns its model:
it builds the trainable module (whose forward takes a batch and returns the
loss), prepares batches with its frozen parts (a VAE, a text encoder), draws
sample images, and exports the final artifact in its ecosystem's format. A
family never sees a rank count or a process group.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.train.registry import FAMILIES


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def family_for(cfg: Any, *, device: torch.device, dtype: torch.dtype) -> "ModelFamily":
    for kind, (config_target, family_target) in FAMILIES.items():
        if isinstance(cfg, _load(config_target)):
            return _load(family_target)(cfg, device=device, dtype=dtype)
    raise ValueError(f"no model family trains a {type(cfg).__name__} config "
                     f"(families: {', '.join(FAMILIES)})")


class ModelFamily(ABC):
    """One model family. `cfg` is its training config (TrainSections + `model`)."""

    def __init__(self, cfg: Any, *, device: torch.device, dtype: torch.dtype) -> None:
        self.cfg = cfg
        self.device = device
        self.dtype = dtype  # the precision the engine trains in
        # Set by the loop before build() under ZeRO-3: `partition.context()` creates
        # modules already partitioned over the ranks and `partition.load(module, folder)`
        # fills one from a saved folder, each rank reading only its slice. A family that
        # loads large pretrained parts builds its trained ones that way, so that no rank
        # ever holds them whole; None: build whole, as usual.
        self.partition: Any = None

    @abstractmethod
    def build(self) -> torch.nn.Module:
        """The module DeepSpeed wraps: forward(batch) -> scalar loss, or (loss, {name:
        detached scalar}) to have the loop log the loss's terms too. Frozen parts stay
        outside it, on `device`, built here too."""

    def parameter_groups(self, module: torch.nn.Module) -> list[dict[str, Any]]:
        """The optimizer's parameter groups: one of every trainable parameter by default. A
        family with parts that need their own learning rate (a GAN's two networks, a head
        and a backbone) returns several; a group's "lr" overrides optim.lr for it (the
        schedule scales every group alike)."""
        return [{"params": [p for p in module.parameters() if p.requires_grad]}]

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move the batch to the device and run frozen encoders (no gradients)."""
        return {key: value.to(self.device) if isinstance(value, torch.Tensor) else value
                for key, value in batch.items()}

    def images_in(self, batch: dict[str, Any]) -> int:
        return len(batch["index"])

    @abstractmethod
    def sample(self, module: torch.nn.Module, num_images: int, seed: int) -> np.ndarray:
        """Images (N, 3, H, W) uint8 from the current weights, for sample grids. Called on
        rank 0 with whole parameters (the loop gathers them under ZeRO-3)."""

    def sample_recipe(self, num_images: int, seed: int) -> dict[str, Any] | None:
        """How `sample` drew its images, in the ecosystem's own terms (prompts, sampler,
        steps, seed), so that anyone can redraw a run's grid from its export with that
        ecosystem's tools alone; written beside each grid as JSON. None: not stated."""
        return None

    def export_scope(self) -> str:
        """What `export` needs of the trained module's state: "all" of it, or only the
        "trainable" parameters (a LoRA over a base the user already has), which spares
        gathering a whole frozen base onto rank 0."""
        return "all"

    @abstractmethod
    def export(self, state_dict: dict[str, torch.Tensor], output_dir: Path) -> Path:
        """Write the trained model in its ecosystem's format from a consolidated state
        dict of the trainable module (rank 0). Returns what was written."""

    def describe(self) -> str:
        return type(self).__name__
