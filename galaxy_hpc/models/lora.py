"""LoRA adapters from a config's `lora:` section, built in one place for every family.

Both the trained module and the CPU copy an export loads the weights into get their
adapters here, so they cannot disagree on rank, alpha or targets (alpha / rank is the
adapter's scale: a mismatch loads the LoRA at the wrong strength).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoraSection:
    """A `lora:` config section: adapters of rank `rank` scaled by alpha / rank on the
    modules named in `target_modules`; the base weights stay frozen. Each family
    subclasses it with its own default targets."""

    rank: int = 16
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"lora.rank must be >= 1, got {self.rank}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ValueError("lora.target_modules must name at least one module")


def lora_config(section: Any, target_modules: Sequence[str] | None = None) -> Any:
    """A peft LoraConfig of `section` (rank, alpha, dropout, target_modules), on
    `target_modules` instead of the section's own when given. Adapters start Gaussian
    (A) and zero (B), so a fresh adapter changes nothing."""
    from peft import LoraConfig

    targets = section.target_modules if target_modules is None else target_modules
    return LoraConfig(r=section.rank, lora_alpha=section.alpha, lora_dropout=section.dropout,
                      init_lora_weights="gaussian", target_modules=list(targets))
