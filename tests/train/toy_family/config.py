"""The toy family's `model:` section. Imports no torch, like every model config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from galaxy_hpc.data.section import DataSection


@dataclass
class ToyModelConfig:
    width: int = 8  # channels of the hidden convolution
    noise: float = 0.3  # std of the noise the model learns to remove (stretched units)

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"model.width must be >= 1, got {self.width}")

    @staticmethod
    def default_data() -> DataSection:
        return DataSection(caption_column=None, condition_columns=[], num_workers=0)

    def check_config(self, cfg: Any) -> None:
        if cfg.data.caption_column is not None:
            raise ValueError("data.caption_column: the toy model reads images only")
