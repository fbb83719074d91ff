"""The `data:` section of a training config: which store a model trains on, and how.

It lives with the data, not the trainer: a model family states the data it needs by
giving this section's defaults (a caption column, condition columns), and the loop
builds the dataset from it before it builds the model (galaxy_hpc/train/loop.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class DataSection:
    store: str = ""  # training store (galaxy-hpc ingest / synth output)
    caption_column: str | None = None  # e.g. "caption" for text-conditioned models
    condition_columns: list[str] = field(default_factory=list)  # numeric conditions, in order
    caption_dropout: float = 0.0  # probability of an empty caption (classifier-free guidance)
    shuffle_caption_tags: bool = True  # GalaxySD shuffles tags after the survey prefix
    augment: bool = True  # rotations and flips (galaxies have no "up")
    # any: rotations by any angle (bilinear resampling); right_angles: only the 8 exact
    # symmetries of the square, which keep every pixel value (no resampling smooths the
    # sky noise; what cached latents hold).
    rotation: Literal["any", "right_angles"] = "any"
    # How a uint8 store's pixels travel: uint8 -> as stored (flipped and turned by right
    # angles in the loader), made floats and rotated by any angle on the rank's device
    # (on a GPU nearly free; a quarter of the bytes to move; the loader workers only
    # decode: benchmarks/bench_data.py); float32 -> finished where they are read (in the
    # loader workers: the choice for CPU ranks whose workers have cores to spare);
    # auto -> uint8 on GPU ranks and with num_workers 0, float32 otherwise. Float (flux)
    # stores always travel as float32.
    pixel_transfer: Literal["auto", "uint8", "float32"] = "auto"
    num_workers: int = 2
    shuffle_shards: int = 4  # shards shuffled together per worker
    # Stable Diffusion (train_sd) only; other families refuse it. A latent store of
    # data.store (`galaxy-hpc encode`): each item is drawn under one of the 8 exact
    # rotations/flips it caches, from its cached latent distribution, instead of being
    # encoded every step. Any-angle rotation cannot be cached, so it needs augment: false.
    # Fixed captions (shuffle_caption_tags: false) also use the text encoder states
    # cached beside it; shuffled ones are encoded per step.
    latents: str = ""
    # Held-out split (galaxy_hpc/data/split.py): item i is held out when a hash of
    # (validation_seed, i) falls below validation_fraction; training never reads those
    # items, validation (run.eval_every) does. 0: no split, every item is trained on.
    # Keep the seed and the store the same across runs that must not see each other's
    # validation items (the DINOv2 head and full stages).
    validation_fraction: float = 0.0
    validation_seed: int = 0  # the hash's seed: another seed, another split
    # Held-out items each validation reads at most (the first in store order): a fixed
    # set, so successive validation losses compare. null: all of them.
    validation_max_items: int | None = 2048

    def __post_init__(self) -> None:
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"data.validation_fraction must be in [0, 1), got "
                             f"{self.validation_fraction}")
        if self.validation_seed < 0:
            raise ValueError(f"data.validation_seed must be >= 0, got {self.validation_seed}")
        if self.validation_max_items is not None and self.validation_max_items < 1:
            raise ValueError(f"data.validation_max_items must be >= 1 or null, got "
                             f"{self.validation_max_items}")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ValueError(f"caption_dropout must be in [0, 1], got {self.caption_dropout}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.latents and self.augment:
            raise ValueError(
                "data.augment rotates by any angle, which cached latents cannot hold: set "
                "data.augment: false with data.latents (items are then drawn under the 8 "
                "exact rotations and flips the latent store caches)")
