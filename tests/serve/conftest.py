"""Shared by the serve tests: two small synthetic stores (Zarr RGB, HDF5 flux), the tiny
SD and GAN models of the generation tests, and an app over them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generate"))

import tiny_models  # noqa: E402
from support import stores  # noqa: E402

NUM_RGB = 30


@pytest.fixture(scope="session")
def serve_stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-stores")
    return {
        "rgb": stores.write_synth_store(root / "rgb.zarr", num_galaxies=NUM_RGB, seed=3,
                                        shard_size=8, size=32, output="uint8"),
        "flux": stores.write_synth_store(root / "flux.h5", num_galaxies=12, seed=5,
                                         shard_size=4, size=32, bands=("g", "r", "i", "z")),
    }


@pytest.fixture(scope="session")
def serve_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-models")
    sd = tiny_models.write_tiny_sd(root / "sd")
    return {"sd": sd, "lora": tiny_models.write_tiny_lora(sd, root / "lora"),
            "gan": tiny_models.write_tiny_gan(root / "gan")}


def serve_config(serve_stores, **fields):
    from galaxy_hpc.serve.config import ServeConfig

    from hpc.config import from_dict

    data = {"stores": {k: str(v) for k, v in serve_stores.items()},
            "sampler": {"name": "ddim", "steps": 2, "guidance_scale": 2.0},
            "runtime": {"device": "cpu", "cpu_threads": 1}, **fields}
    return from_dict(ServeConfig, data)
