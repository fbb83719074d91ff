"""The augmentation experiment's typed config (kind `augmentation`).

    kind: augmentation
    real_store: data/stores/gz2_64.zarr
    generated_store: runs/catalog/catalog.zarr     # e.g. rare classes oversampled
    output_dir: runs/augmentation
    classifier: {image_size: 64, epochs: 10}

Kept free of torch imports: `galaxy-hpc config` and the CLI read it quickly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


LABEL_SOURCES = ("auto", "gz2", "caption", "column")


@dataclass
class ClassifierSection:
    """The one small classifier both arms train (galaxy_hpc.models.classifier)."""

    image_size: int = 64  # both stores are resized to this side (antialiased)
    width: int = 32  # channels of the first convolution
    epochs: float = 10.0  # over the real training set; both arms take this many steps
    batch_size: int = 64  # galaxies per step
    lr: float = 2.0e-3  # AdamW learning rate
    weight_decay: float = 1.0e-4  # AdamW weight decay
    augment: bool = True  # rotations by any angle and flips, as training of every family

    def __post_init__(self) -> None:
        for name in ("image_size", "width", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"classifier.{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size < 16:
            raise ValueError(f"classifier.image_size must be >= 16 (three poolings), got "
                             f"{self.image_size}")
        if self.epochs <= 0 or self.lr <= 0:
            raise ValueError("classifier.epochs and classifier.lr must be > 0")


@dataclass
class AugmentationConfig:
    """Classifier on real only vs real + generated, tested on real.

    Trains the same small classifier on real galaxies only and on real + generated ones
    (same number of steps) and scores both on held-out real galaxies: accuracy,
    completeness and purity per class, rare classes called out. Writes
    output_dir/augmentation.json and augmentation.png.
    """

    real_store: str = ""  # the real galaxies (training and held-out test)
    generated_store: str = ""  # the generated catalog added to the real training set
    output_dir: str = "runs/augmentation"  # augmentation.json and augmentation.png
    # `auto` takes, in this order, what both stores have: `label_column` if set, the 37 GZ2
    # vote fraction columns (classes of galaxy_hpc.data.main_class), captions.
    labels: Literal["auto", "gz2", "caption", "column"] = "auto"
    label_column: str | None = None  # with labels: column, the column holding the class
    # Of each class of the real store, set aside for testing (at least one galaxy of any
    # class with two or more), chosen from `seed`.
    holdout_fraction: float = 0.3
    # A class is rare when it is less than this share of the real training set; the
    # report calls those classes out.
    rare_fraction: float = 0.1
    # The whole experiment is repeated with this many seeds (classifier initialisation,
    # batch order, augmentation); scores are given as mean and spread.
    num_seeds: int = 3
    seed: int = 0  # the first of the seeds; also picks the held-out galaxies
    max_real: int | None = None  # use at most this many real galaxies, or all
    max_generated: int | None = None  # use at most this many generated galaxies (the first)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    classifier: ClassifierSection = field(default_factory=ClassifierSection)

    def __post_init__(self) -> None:
        if not self.real_store or not self.generated_store:
            raise ValueError("augmentation: real_store and generated_store are both needed")
        if self.labels == "column" and not self.label_column:
            raise ValueError("augmentation: labels: column needs label_column")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if not 0 < self.rare_fraction < 1:
            raise ValueError(f"rare_fraction must be in (0, 1), got {self.rare_fraction}")
        if self.num_seeds < 1:
            raise ValueError(f"num_seeds must be >= 1, got {self.num_seeds}")
