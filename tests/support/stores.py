"""Small synthetic stores for tests, drawn with the same job as `galaxy-hpc synth`."""

from __future__ import annotations

from pathlib import Path


def write_synth_store(out, *, num_galaxies: int, seed: int, shard_size: int, captions: bool = True,
                **galaxy) -> Path:
    """GalSim galaxies with GZ2 vote fractions (and captions unless told not) at `out`.

    `galaxy` are SynthConfig fields (size, output, bands, ...); without any, the job's
    default galaxies (64 px uint8 colour images)."""
    from galaxy_hpc.data.synth.config import SynthConfig
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth

    job = SynthJobConfig(out=str(out), num_galaxies=num_galaxies, seed=seed,
                         shard_size=shard_size, captions=captions)
    if galaxy:
        job.galaxy = SynthConfig(**galaxy)
    run_synth(job, progress=False)
    return Path(out)
