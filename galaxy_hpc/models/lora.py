"""LoRA adapters from a config's `lora:` section, built in one place for every family.

Both the trained module and the CPU copy an export loads the weights into get their
adapters here, so they cannot disagree on rank, alpha or targets (alpha / rank is the
adapter's scale: a mismatch loads the LoRA at the wrong strength).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
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


# An adapter folder's record of the base it was trained on, so that loading it needs no
# --base: {"base": path}, relative to the adapter folder when the run wrote the base
# itself (a tiny model's OUTPUT/base: the run folder can move), else absolute.
BASE_RECORD = "base.json"


def write_base_record(adapter_dir: Path, base: Path) -> Path:
    """Write adapter_dir/base.json naming `base` (relative when it lies beside it)."""
    import json
    import os

    base, adapter_dir = Path(base).resolve(), Path(adapter_dir)
    try:
        named = os.path.relpath(base, adapter_dir.resolve())
        named = named if not named.startswith(("../../", "..\\..\\")) else str(base)
    except ValueError:  # another drive
        named = str(base)
    record = adapter_dir / BASE_RECORD
    record.write_text(json.dumps({"base": named}, indent=2) + "\n")
    return record


def recorded_base(adapter: str | Path) -> Path | None:
    """The base an adapter folder (or its weights file) records, resolved; None when it
    records none (an adapter from elsewhere, or exported before the record existed)."""
    import json

    folder = Path(adapter)
    folder = folder.parent if folder.is_file() else folder
    record = folder / BASE_RECORD
    if not record.is_file():
        return None
    try:
        named = json.loads(record.read_text())["base"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{record}: not a base record ({{\"base\": PATH}}); delete it and "
                         "give the base") from None
    path = Path(named)
    return (path if path.is_absolute() else folder / path).resolve()
