"""Shared by the serve tests: two small synthetic stores (Zarr RGB, HDF5 flux), the tiny
SD, LoRA and GAN models of the generation tests, and Debian's Chromium."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generate"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tiny_models  # noqa: E402
from serve_helpers import NUM_RGB  # noqa: E402
from support import stores  # noqa: E402


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


CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")


def _find_chromium() -> str | None:
    import shutil

    return next((found for name in CHROMIUM_CANDIDATES if (found := shutil.which(name))), None)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium for the browser tests, installed with apt-get when missing (as
    tests/cluster/local_slurm.sh installs Slurm); the tests fail if it cannot be."""
    import os
    import subprocess

    found = _find_chromium()
    if found is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        if os.geteuid() != 0:
            install = ["sudo", "-n", *install]
        run = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
        if run.returncode != 0:  # stale package lists: update, then try again
            update = install[:-4] + ["update"] if install[0] == "sudo" else ["apt-get", "update"]
            subprocess.run(update, capture_output=True, env=env, timeout=600)
            run = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
        found = _find_chromium()
        if found is None:
            pytest.fail(f"chromium is not installed and apt-get could not install it:\n"
                        f"{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    return found
