"""Store helpers of the evaluation tests (a module of its own: every test folder has a
conftest.py, and `from conftest import ...` finds whichever pytest imported last)."""

from __future__ import annotations

from pathlib import Path


def draw(out: Path, num: int, seed: int, *, output: str = "uint8", **galaxy) -> Path:
    from galaxy_hpc.data.synth.config import SynthConfig
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth

    run_synth(SynthJobConfig(out=str(out), num_galaxies=num, seed=seed, shard_size=32,
                             galaxy=SynthConfig(size=64, output=output, **galaxy)),
              progress=False)
    return out


def copy_head(source: Path, out: Path, num: int) -> Path:
    """The first `num` images (and no columns) of a store, as a new store."""
    from hpc.store import StoreSpec, create_store, finalize_store, open_store

    store = open_store(source)
    spec = StoreSpec(image_shape=store.spec.image_shape, image_dtype=store.spec.image_dtype,
                     columns={}, shard_size=num)
    writer = create_store(out, spec, num_items=num)
    writer.write_shard(0, store.read_images(0, num), {})
    finalize_store(out)
    return out
