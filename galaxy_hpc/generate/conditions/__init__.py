"""Condition sources of a catalog: a CSV/FITS table, or a real store (drawn with rare
classes oversampled, or img2img from its galaxies). See source.py."""

from __future__ import annotations

from typing import Any

from galaxy_hpc.generate.conditions.rows import Rows, read_rows
from galaxy_hpc.generate.conditions.source import ConditionSource


def build_conditions(cfg: Any, generator: Any) -> ConditionSource:
    """The condition source of `cfg` for what `generator` takes (text or numbers)."""
    return ConditionSource(cfg, generator, read_rows(cfg.conditions.source, cfg.conditions.path))


__all__ = ["ConditionSource", "Rows", "build_conditions", "read_rows"]
