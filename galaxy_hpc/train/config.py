"""Training configs: the sections every family shares, composed with a family's `model:`.

A training config of kind K (`kind: train_sd`, `train_ldm_vae`, ...) is `TrainConfig`
with K's model section (galaxy_hpc/registry.py names it) and the data section that model
starts from. The classes are composed here on first use, one per registered kind, and
are this module's attributes (`SDTrain...` by kind: `TrainSdConfig`), so configs pickle
and `kind:` round-trips. The loop reads only the shared sections, and a model section
never imports them: a new family changes nothing here.

A model section may define
- `default_data()` (a staticmethod): the DataSection its configs start from (a caption
  column, condition columns);
- `check_config(self, cfg)`: called with the whole config once built, to fill what the
  data section left to the model and to refuse combinations it cannot train, with the
  offending key in the message;
- `reads_cached_latents = True` (a ClassVar) when it trains from `data.latents`
  (`galaxy-hpc encode`); every other family refuses a latent store instead of ignoring it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from galaxy_hpc.data.section import DataSection
from hpc.zero import ZeroConfig


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


LOGGERS = ("tensorboard", "wandb")


@dataclass
class WandbSection:
    """Weights & Biases, when run.loggers has wandb (rank 0 logs; the other ranks never
    start W&B)."""

    project: str = "galaxy-hpc"
    entity: str | None = None  # team or user; null: the logged-in default
    name: str | None = None  # run name; null: the output folder's name
    tags: list[str] = field(default_factory=list)
    # offline: written under OUTPUT/wandb and uploaded later with the `wandb sync` command
    # the run prints (compute nodes usually have no network); online; disabled. A
    # WANDB_MODE environment variable wins over this.
    mode: Literal["offline", "online", "disabled"] = "offline"


@dataclass
class EarlyStoppingSection:
    """Stop once the validation loss has not improved for `patience` validations in a
    row: improving means falling below the best so far by more than `min_delta`."""

    patience: int = 0  # validations without improvement before stopping; 0: never stop
    min_delta: float = 0.0  # how far below the best a loss must fall to count (loss units)

    def __post_init__(self) -> None:
        if self.patience < 0:
            raise ValueError(f"run.early_stopping.patience must be >= 0, got {self.patience}")
        if self.min_delta < 0:
            raise ValueError(f"run.early_stopping.min_delta must be >= 0, got {self.min_delta}")


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
    # Where scalars (loss, lr, images/s, ...) and sample grids go besides train_log.jsonl
    # and samples/*.png: tensorboard (OUTPUT/tensorboard), wandb (see run.wandb); [] for
    # neither.
    loggers: list[str] = field(default_factory=lambda: ["tensorboard"])
    wandb: WandbSection = field(default_factory=WandbSection)
    # Steps between validations (the loss on data.validation_fraction's held-out items,
    # logged as val_loss); 0: none. Needs data.validation_fraction > 0.
    eval_every: int = 0
    early_stopping: EarlyStoppingSection = field(default_factory=EarlyStoppingSection)
    # Keep the checkpoint of the lowest validation loss (checkpoints/best.json names it)
    # beside the newest ones: saved when a validation improves, never pruned.
    keep_best: bool = True
    # Which weights the run exports (and draws its final grid from): "last", those of
    # max_steps (or of the step early stopping ended at); "best", those of the kept best
    # checkpoint (needs run.eval_every and run.keep_best).
    export_weights: str = "last"

    def __post_init__(self) -> None:
        if self.eval_every < 0:
            raise ValueError(f"run.eval_every must be >= 0, got {self.eval_every}")
        if self.export_weights not in ("last", "best"):
            raise ValueError(f"run.export_weights must be last or best, got "
                             f"{self.export_weights!r}")
        if self.export_weights == "best" and not (self.eval_every and self.keep_best):
            raise ValueError("run.export_weights=best needs validations and the best checkpoint "
                             "kept: set run.eval_every (and run.keep_best: true)")
        if self.early_stopping.patience and not self.eval_every:
            raise ValueError("run.early_stopping.patience needs validations: set run.eval_every")
        for name in ("max_steps", "micro_batch_size", "log_every", "checkpoint_every",
                     "num_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.sample_every < 0:
            raise ValueError(f"sample_every must be >= 0, got {self.sample_every}")
        unknown = [name for name in self.loggers if name not in LOGGERS]
        if unknown:
            raise ValueError(f"loggers: {unknown[0]!r} is not a logger; use "
                             f"{' and/or '.join(LOGGERS)} (or [] for neither)")
        if len(set(self.loggers)) != len(self.loggers):
            raise ValueError(f"loggers: {self.loggers} names one twice")


@dataclass
class TrainConfig:
    """Every training config: run, data, optim, zero, ema, and the family's `model`."""

    run: RunSection = field(default_factory=RunSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    zero: ZeroConfig = field(default_factory=ZeroConfig)
    ema: EmaSection = field(default_factory=EmaSection)
    model: Any = None

    def __post_init__(self) -> None:
        if self.run.eval_every and not self.data.validation_fraction:
            raise ValueError("run.eval_every needs held-out items: set data.validation_fraction "
                             "(e.g. 0.05)")
        if self.data.latents and not getattr(self.model, "reads_cached_latents", False):
            raise ValueError(f"data.latents: {type(self.model).__name__} trains on pixels and "
                             "would ignore a latent store; leave data.latents empty")
        check = getattr(self.model, "check_config", None)
        if check is not None:
            check(self)


_COMPOSED: dict[str, type] = {}


def train_config_class(kind: str) -> type:
    """The training config of a registered model kind, composed once."""
    from galaxy_hpc.registry import model_spec
    from hpc.imports import import_target

    spec = model_spec(kind)
    name = spec.config_class_name
    if name not in _COMPOSED:
        model_cls = import_target(spec.model_config, f"model {kind!r}: model_config")
        data = getattr(model_cls, "default_data", DataSection)
        _COMPOSED[name] = dataclasses.make_dataclass(
            name, [("model", model_cls, field(default_factory=model_cls)),
                   ("data", DataSection, field(default_factory=data))],
            bases=(TrainConfig,), namespace={"__module__": __name__,
                                             "__doc__": spec.summary[:1].upper() + spec.summary[1:] + "."})
    return _COMPOSED[name]


def __getattr__(name: str) -> type:
    """`galaxy_hpc.train.config.TrainSdConfig` and the like: what config kinds and pickles
    name. Composed on first access."""
    from galaxy_hpc.registry import MODELS

    for kind, spec in MODELS.items():
        if spec.config_class_name == name:
            return train_config_class(kind)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
