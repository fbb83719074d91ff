"""Models in the layout users hand over: SD-1.5 and dinov2-base folders (random weights).

`small` folders (the same classes and files, narrow widths) serve the suite's
real-layout cases; the published sizes serve `make test-real` (marker `real`).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sd_small(tmp_path_factory):
    from galaxy_hpc.models.published import write_sd_folder

    return write_sd_folder(tmp_path_factory.mktemp("models") / "sd-small", shape="small")


@pytest.fixture(scope="session")
def dino_small(tmp_path_factory):
    from galaxy_hpc.models.published import write_dinov2_folder

    return write_dinov2_folder(tmp_path_factory.mktemp("models") / "dinov2-small", shape="small")


@pytest.fixture(scope="session")
def sd15(tmp_path_factory):
    from galaxy_hpc.models.published import write_sd_folder

    return write_sd_folder(tmp_path_factory.mktemp("models") / "stable-diffusion-v1-5")


@pytest.fixture(scope="session")
def dinov2_base(tmp_path_factory):
    from galaxy_hpc.models.published import write_dinov2_folder

    return write_dinov2_folder(tmp_path_factory.mktemp("models") / "dinov2-base")


@pytest.fixture(scope="session")
def store64(tmp_path_factory):
    """64 px RGB galaxies with captions and GZ2 vote fractions."""
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth

    out = tmp_path_factory.mktemp("real-data") / "synth64.zarr"
    run_synth(SynthJobConfig(out=str(out), num_galaxies=64, seed=5, shard_size=32), progress=False)
    return out


@pytest.fixture(scope="session")
def flux50(tmp_path_factory):
    from galaxy_hpc.data.synth.config import SynthConfig
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth

    out = tmp_path_factory.mktemp("real-data") / "flux50.zarr"
    run_synth(SynthJobConfig(out=str(out), num_galaxies=48, seed=5, shard_size=16, captions=False,
                             galaxy=SynthConfig(size=50, output="float32")), progress=False)
    return out
