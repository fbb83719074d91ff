"""A small synthetic store (64 px, captions) shared by the training tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def synth_store(tmp_path_factory):
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth

    out = tmp_path_factory.mktemp("train-data") / "synth64.zarr"
    run_synth(SynthJobConfig(out=str(out), num_galaxies=96, seed=11, shard_size=32),
              progress=False)
    return out


@pytest.fixture(autouse=True)
def _deepspeed_on_cpu(monkeypatch):
    monkeypatch.setenv("DS_ACCELERATOR", os.environ.get("DS_ACCELERATOR", "cpu"))
