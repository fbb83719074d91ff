"""Config of the DINOv2 vote-fraction regressor (`kind: train_dino`). Imports no torch:
`galaxy-hpc config` reads it on login nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from galaxy_hpc.data.section import DataSection
from galaxy_hpc.models import lora

TARGET_SUFFIXES = ("fraction", "weighted_fraction", "debiased")
SOURCES_HINT = ("the backbone needs exactly one source: model.backbone (a local transformers "
                "folder such as dinov2-base), model.tiny (a small config with random "
                "weights) or model.init_from (an earlier run's predictor folder)")


@dataclass
class TinyBackboneSection:
    """A Dinov2Config built in memory (random weights), for CPU runs and tests."""

    hidden_size: int = 32
    num_layers: int = 2
    num_heads: int = 2
    patch_size: int = 8
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "num_heads", "patch_size", "mlp_ratio"):
            if getattr(self, name) < 1:
                raise ValueError(f"tiny.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"tiny.hidden_size ({self.hidden_size}) must be a multiple of "
                             f"tiny.num_heads ({self.num_heads})")


@dataclass
class HeadSection:
    """The head on [CLS token, mean patch token] (what Dinov2ForImageClassification feeds
    its classifier): an MLP with one hidden layer, or a linear probe with hidden_dim 0."""

    hidden_dim: int = 512
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.hidden_dim < 0:
            raise ValueError(f"head.hidden_dim must be >= 0 (0: linear), got {self.hidden_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"head.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class LoraSection(lora.LoraSection):
    """stage: lora: adapters on the attention projections (peft), base weights frozen."""

    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])


@dataclass
class HeldOutSection:
    """How the held-out items are evaluated at the end of training.

    Which items are held out is the shared split of every trainer (data.validation_fraction
    and data.validation_seed, galaxy_hpc/data/split.py): training never reads them. Keep
    the seed (and the store) the same across stages, or the full stage trains on what the
    head stage held out.
    """

    max_items: int = 20_000  # evaluated at most (the first ones in store order)
    batch_size: int = 128
    # Per-question metrics use the galaxies where at least this share of volunteers
    # reached the question (deep questions answered by 1 of 40 are mostly noise).
    min_reach: float = 0.5

    def __post_init__(self) -> None:
        if self.max_items < 1 or self.batch_size < 1:
            raise ValueError("heldout.max_items and heldout.batch_size must be >= 1")
        if not 0.0 <= self.min_reach <= 1.0:
            raise ValueError(f"heldout.min_reach must be in [0, 1], got {self.min_reach}")


@dataclass
class DinoModelConfig:
    # Where the backbone comes from, exactly one of:
    # - backbone: a local folder in transformers layout (config.json + model.safetensors),
    #   or a Hugging Face id in the local cache (facebook/dinov2-base after
    #   `huggingface-cli download`); nothing is downloaded;
    # - tiny: a small Dinov2Config with random weights;
    # - init_from: the `predictor` folder of an earlier run (backbone and head), e.g. the
    #   head stage's output for the full stage.
    backbone: str = ""
    tiny: TinyBackboneSection | None = None
    init_from: str | None = None
    # head: backbone frozen (it runs outside the trained module, without gradients);
    # full: everything trained; lora: adapters + head trained, merged at export.
    stage: Literal["head", "full", "lora"] = "head"
    # Side the images are resized to before the backbone (224 for DINOv2 checkpoints);
    # null: the store's side, rounded down to a multiple of the patch size.
    input_size: int | None = 224
    # auto: dirichlet_multinomial when the store has the 37 `<stem>_count` columns,
    # cross_entropy on the per-question fractions otherwise.
    loss: Literal["auto", "dirichlet_multinomial", "cross_entropy"] = "auto"
    # Which GZ2 columns are the targets: `<stem>_<target_suffix>` (Hart16: debiased).
    target_suffix: str = "fraction"
    head: HeadSection = field(default_factory=HeadSection)
    lora: LoraSection = field(default_factory=LoraSection)
    heldout: HeldOutSection = field(default_factory=HeldOutSection)

    def __post_init__(self) -> None:
        sources = [name for name, value in (("backbone", self.backbone), ("tiny", self.tiny),
                                            ("init_from", self.init_from)) if value]
        # None given is refused when the model is built (a config section given in part
        # is merged onto this default, which therefore cannot name a source itself).
        if len(sources) > 1:
            raise ValueError(f"{' and '.join(sources)}: {SOURCES_HINT}; set only one "
                             "(an inherited one can be cleared with '' or null)")
        if self.input_size is not None and self.input_size < 1:
            raise ValueError(f"input_size must be >= 1 (or null), got {self.input_size}")
        if self.target_suffix not in TARGET_SUFFIXES:
            raise ValueError(f"target_suffix must be one of {', '.join(TARGET_SUFFIXES)}, "
                             f"got {self.target_suffix!r}")

    @staticmethod
    def default_data() -> DataSection:
        return DataSection(caption_column=None, condition_columns=[], validation_fraction=0.1)

    def check_config(self, cfg: Any) -> None:
        """The whole training config, once built (galaxy_hpc/train/config.py)."""
        if cfg.data.caption_column is not None or cfg.data.condition_columns:
            raise ValueError("data.caption_column / data.condition_columns: the regressor "
                             "reads its targets itself (the 37 GZ2 columns named by "
                             "model.target_suffix, and vote counts when present); leave "
                             "them unset")
        if not cfg.data.validation_fraction:
            raise ValueError("data.validation_fraction: the regressor is evaluated on held-out "
                             "galaxies at the end; hold some out (e.g. 0.1)")
