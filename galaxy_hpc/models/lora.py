"""LoRA adapters from a config's `lora:` section, built in one place for every family.

Both the trained module and the CPU copy an export loads the weights into get their
adapters here, so they cannot disagree on rank, alpha or targets (alpha / rank is the
adapter's scale: a mismatch loads the LoRA at the wrong strength).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def lora_config(section: Any, target_modules: Sequence[str] | None = None) -> Any:
    """A peft LoraConfig of `section` (rank, alpha, dropout, target_modules), on
    `target_modules` instead of the section's own when given. Adapters start Gaussian
    (A) and zero (B), so a fresh adapter changes nothing."""
    from peft import LoraConfig

    targets = section.target_modules if target_modules is None else target_modules
    return LoraConfig(r=section.rank, lora_alpha=section.alpha, lora_dropout=section.dropout,
                      init_lora_weights="gaussian", target_modules=list(targets))
