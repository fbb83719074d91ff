"""A small synthetic store (64 px, captions) shared by the training tests."""

from __future__ import annotations

import os

import pytest
from support import stores


@pytest.fixture(scope="session")
def synth_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("train-data") / "synth64.zarr"
    return stores.write_synth_store(out, num_galaxies=96, seed=11, shard_size=32)


@pytest.fixture(autouse=True)
def _deepspeed_on_cpu(monkeypatch):
    monkeypatch.setenv("DS_ACCELERATOR", os.environ.get("DS_ACCELERATOR", "cpu"))
