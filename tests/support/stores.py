"""Small stores for tests: synthetic galaxies drawn with the same job as `galaxy-hpc synth`, or
images and columns a test made by hand."""

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


def write_array_store(out, images, columns: dict, *, shard_size: int):
    """A finalized store of `images` (N, C, H, W; its dtype is the store's) and columns
    {name: values}, strings where the values are str: for tests that build their galaxies
    by hand."""
    import numpy as np

    from hpc.store import StoreSpec, create_store, finalize_store

    images = np.asarray(images)
    values = {name: np.asarray(v, dtype=object) if isinstance(v[0], str) else np.asarray(v)
              for name, v in columns.items()}
    kinds = {name: "str" if v.dtype == object else str(v.dtype) for name, v in values.items()}
    spec = StoreSpec(image_shape=images.shape[1:], image_dtype=str(images.dtype),
                     columns=kinds, shard_size=shard_size)
    writer = create_store(out, spec, num_items=len(images))
    for shard in range(writer.num_shards):
        a, b = writer.shard_bounds(shard)
        writer.write_shard(shard, images[a:b], {name: v[a:b] for name, v in values.items()})
    finalize_store(out)
    return Path(out)


def synth_with_and_without_noise(galaxy_hpc, root: Path, num_galaxies: int, *options: str,
                                 suffix: str = "", seed: int = 3) -> dict[str, Path]:
    """{"noisy<suffix>", "clean<suffix>"}: the same 32 px synthetic galaxies (the same rows,
    the same light) drawn by `galaxy-hpc synth` with and without pixel noise: the clean
    store is what a perfect noise-free generator of the noisy one's galaxies would draw."""
    import subprocess

    made = {}
    for name, noise in (("noisy", "true"), ("clean", "false")):
        made[name + suffix] = Path(root) / f"{name}{suffix}.zarr"
        subprocess.run([galaxy_hpc, "synth", "--n", str(num_galaxies), "--size", "32",
                        *options, "--no-captions", "--seed", str(seed), "--out",
                        str(made[name + suffix]), f"galaxy.add_noise={noise}"],
                       check=True, capture_output=True, timeout=300)
    return made
