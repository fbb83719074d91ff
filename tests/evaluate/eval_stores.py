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


# Hand-made conditional stores (conditional fidelity): the condition space is 3 x 3 cells,
# redshift and log M* each drawn around three well-separated centres, so the real store's
# tercile edges fall in the gaps and every galaxy's cell is known by construction.
REDSHIFTS = (0.06, 0.12, 0.18)
MASSES = (9.8, 10.5, 11.2)
BLOB_SIDE = 24


def blob_cells(per_cell) -> list[tuple[int, int, int]]:
    """(redshift bin, mass bin, count) of each cell: `per_cell` an int, or a dict
    {(i, j): count} over a default of 60."""
    return [(i, j, per_cell if isinstance(per_cell, int) else per_cell.get((i, j), 60))
            for i in range(3) for j in range(3)]


def blob_store(out: Path, seed: int, *, per_cell=60, bands: int = 3,
               flux_factor: dict | None = None, draws: int = 0) -> Path:
    """A float32 store of round Gaussian galaxies with redshift and log_stellar_mass columns.
    Flux rises with mass and falls with redshift, size rises with mass, each with a
    log-normal scatter of 0.1 dex; band k has 1.5**k times band 0's light (a fixed colour).
    `flux_factor` {(i, j): f} multiplies the flux of every galaxy of cell (i, j).
    `draws` K > 0: a catalog as `generate` writes with conditions.per_row K, each
    condition row drawn K times in a row (its own scatter and noise each time) and a
    source_row column."""
    import numpy as np

    from hpc.store import StoreSpec, create_store, finalize_store

    rng = np.random.default_rng(seed)
    z, mass, factor = [], [], []
    for i, j, count in blob_cells(per_cell):
        z.append(REDSHIFTS[i] + rng.uniform(-0.01, 0.01, count))
        mass.append(MASSES[j] + rng.uniform(-0.1, 0.1, count))
        factor.append(np.full(count, (flux_factor or {}).get((i, j), 1.0)))
    z, mass, factor = (np.concatenate(v) for v in (z, mass, factor))
    columns = {"redshift": "float64", "log_stellar_mass": "float64"}
    extra = {}
    if draws:
        rows = np.repeat(np.arange(len(z)), draws)
        z, mass, factor = z[rows], mass[rows], factor[rows]
        columns["source_row"], extra["source_row"] = "int64", rows.astype(np.int64)
    n = len(z)
    flux = 200.0 * 10 ** (0.8 * (mass - 10.5)) * (0.1 / z) * factor \
        * 10 ** rng.normal(0.0, 0.1, n)
    sigma = (1.2 + 0.8 * (mass - 9.5)) * 10 ** rng.normal(0.0, 0.1, n)
    yy, xx = np.mgrid[0:BLOB_SIDE, 0:BLOB_SIDE] - (BLOB_SIDE - 1) / 2
    light = flux[:, None, None] * np.exp(-(yy**2 + xx**2)[None] / (2 * sigma[:, None, None]**2)) \
        / (2 * np.pi * sigma[:, None, None] ** 2)
    images = np.stack([light * 1.5**k for k in range(bands)], axis=1)
    images = (images + rng.normal(0.0, 0.05, images.shape)).astype(np.float32)
    spec = StoreSpec(image_shape=images.shape[1:], image_dtype="float32", columns=columns,
                     shard_size=128)
    writer = create_store(out, spec, num_items=n)
    for shard in range(writer.num_shards):
        a, b = writer.shard_bounds(shard)
        writer.write_shard(shard, images[a:b], {"redshift": z[a:b], "log_stellar_mass": mass[a:b],
                                                **{k: v[a:b] for k, v in extra.items()}})
    finalize_store(out)
    return out
