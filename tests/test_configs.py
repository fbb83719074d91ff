"""Every YAML under configs/ loads into its typed config (a broken recipe fails here, not on a cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

import galaxy_hpc.jobs  # noqa: F401  (registers every config kind)
from hpc.config import load_config, read_yaml, to_dict

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_config_loads(path):
    cfg = load_config(path)
    assert to_dict(cfg)["kind"] == read_yaml(path)["kind"]  # inherit resolved
