"""Shared by the generation tests: tiny real models, real condition files, and one
reference catalog made once (1 rank, in this process) that the multi-rank, killed,
preempted and Slurm runs must reproduce byte for byte.

Every config pins runtime.cpu_threads: 1. Torch's CPU kernels sum in another order with
another thread count (measured: 2 threads vs 1 moved pixels by up to 5e-7), so "the same
bytes" means the same threads per rank; the runs here differ only in rank count.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tiny_models  # noqa: E402
from gen_helpers import write_config  # noqa: E402
from support import stores  # noqa: E402



@pytest.fixture(scope="session")
def models(tmp_path_factory):
    from galaxy_hpc.models.ldm.config import gz2_fraction_columns

    root = tmp_path_factory.mktemp("generate-models")
    sd = tiny_models.write_tiny_sd(root / "sd")
    return {
        "sd": sd,
        "lora": tiny_models.write_tiny_lora(sd, root / "lora"),
        "ldm_gz2": tiny_models.write_tiny_ldm(root / "ldm_gz2",
                                              condition_names=gz2_fraction_columns()),
        "ldm_zm": tiny_models.write_tiny_ldm(root / "ldm_zm", channels=4,
                                             condition_names=["redshift", "log_stellar_mass"],
                                             stretch=tiny_models.flux_stretch(4)),
        "gan": tiny_models.write_tiny_gan(root / "gan"),
    }


@pytest.fixture(scope="session")
def captions_csv(tmp_path_factory):
    """A CSV of captions (quoted: they hold commas) with ids."""
    import csv

    path = tmp_path_factory.mktemp("generate-tables") / "captions.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["objid", "caption"])
        for row, caption in enumerate(tiny_models.CAPTIONS):
            writer.writerow([f"obj{row:03d}", caption])
    return path


@pytest.fixture(scope="session")
def synth_store(tmp_path_factory):
    """Synthetic galaxies with captions and GZ2 vote fractions, 32 px uint8."""
    out = tmp_path_factory.mktemp("generate-store") / "synth32.zarr"
    return stores.write_synth_store(out, num_galaxies=24, seed=4, shard_size=8, size=32,
                                    output="uint8")




def reference_config(models, captions_csv, out: Path) -> dict:
    """48 objects (6 captions x 8) in 12 shards of 4, batches of 3 (so a batch is clipped
    at every shard's end), with the stochastic Euler ancestral sampler: the hardest case
    for reproducibility, since every step draws noise."""
    return {"out": str(out), "seed": 7, "shard_size": 4, "batch_size": 3,
            "model": {"kind": "sd", "path": str(models["sd"])},
            "sampler": {"name": "euler_ancestral", "steps": 4, "guidance_scale": 3.0},
            "conditions": {"source": "table", "path": str(captions_csv), "per_row": 8},
            "runtime": {"cpu_threads": 1}}


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """In-process runs set torch's thread count (runtime.cpu_threads): put it back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def reference(models, captions_csv, tmp_path_factory):
    """The reference catalog: 1 rank, in this process, uninterrupted."""
    from galaxy_hpc.generate.config import GenerateConfig
    from galaxy_hpc.generate.job import run_generate
    from hpc.config import load_config
    from hpc.store import open_store

    folder = tmp_path_factory.mktemp("generate-reference")
    data = reference_config(models, captions_csv, folder / "catalog.zarr")
    config = write_config(folder / "catalog.yaml", data)
    summary = run_generate(load_config(config, cls=GenerateConfig), progress=False)
    store = open_store(summary.out)
    return {"config": config, "data": data, "summary": summary, "store": store,
            "images": store.read_images(), "table": Path(summary.table)}
