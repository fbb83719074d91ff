"""The sections every training config shares; each model family adds its `model:` section.

A family's config is `TrainConfig` with its own model dataclass (see
galaxy_hpc/train/families.py): `kind: train_sd`, `train_ldm_vae`, ... The
loop reads only these shared sections, so a new family changes nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hpc.zero import ZeroConfig


@dataclass
class DataSection:
    store: str = ""  # training store (galaxy-hpc ingest / synth output)
    caption_column: str | None = None  # e.g. "caption" for text-conditioned models
    condition_columns: list[str] = field(default_factory=list)  # numeric conditions, in order
    caption_dropout: float = 0.0  # probability of an empty caption (classifier-free guidance)
    shuffle_caption_tags: bool = True  # GalaxySD shuffles tags after the survey prefix
    augment: bool = True  # rotations by any angle and flips (galaxies have no "up")
    num_workers: int = 2
    shuffle_shards: int = 4  # shards shuffled together per worker

    def __post_init__(self) -> None:
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ValueError(f"caption_dropout must be in [0, 1], got {self.caption_dropout}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")


@dataclass
class OptimSection:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-2
    eps: float = 1e-8
    warmup_steps: int = 0
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    min_lr_ratio: float = 0.0  # the schedule's floor, as a fraction of lr

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")


@dataclass
class EmaSection:
    enabled: bool = False
    decay: float = 0.9999
    # Warm-up of the decay, min(decay, (1 + n) / (10 + n)): early averages are not
    # dominated by the random initialisation (as diffusers' EMAModel does).
    warmup: bool = True
    update_every: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {self.decay}")
        if self.update_every < 1:
            raise ValueError(f"ema update_every must be >= 1, got {self.update_every}")


@dataclass
class RunSection:
    output_dir: str = "runs/train"
    max_steps: int = 1000  # optimizer steps
    micro_batch_size: int = 4  # images per rank per forward pass
    seed: int = 0
    log_every: int = 10
    sample_every: int = 0  # steps between sample grids; 0: only at the end
    num_samples: int = 8  # images per sample grid
    checkpoint_every: int = 500
    checkpoints_total_limit: int | None = 3
    # "latest": resume from the newest complete checkpoint in output_dir (fresh if none);
    # a checkpoint folder path; or null to always start fresh.
    resume_from_checkpoint: str | None = "latest"
    # When output_dir holds a run of another config (galaxy_hpc/train/run_dir.py): delete it
    # and start over, instead of refusing. A run of this same config still resumes.
    overwrite: bool = False
    gradient_checkpointing: bool = False
    tensorboard: bool = True

    def __post_init__(self) -> None:
        for name in ("max_steps", "micro_batch_size", "log_every", "checkpoint_every",
                     "num_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.sample_every < 0:
            raise ValueError(f"sample_every must be >= 0, got {self.sample_every}")


@dataclass
class TrainSections:
    """Mixed into every family's config: run, data, optim, zero, ema."""

    run: RunSection = field(default_factory=RunSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    zero: ZeroConfig = field(default_factory=ZeroConfig)
    ema: EmaSection = field(default_factory=EmaSection)
