"""Ingest: each seed project's data format into a sharded image store.

    galaxy-hpc ingest SOURCE --out STORE [--kind folder|jsonl|fits|npy|votes] ...
    mpiexec -n K galaxy-hpc ingest CONFIG.yaml [a.b=v ...]

Readers (one module each; each lists its records cheaply, then decodes one at a time):
folder (GalaxySD: images + .txt captions), jsonl (Astro-Diffusion manifest), fits
(cutouts, float32 flux), npy (galaxyCGAN: NPY images + ids + CSV properties), votes
(Galaxy Zoo 2 / Kaggle vote table joined to images). preprocess.py crops and resizes,
pipeline.py runs the ranks, plan.py plans and finishes, rejects.py keeps what was set
aside. `run_ingest(cfg)` is the whole job from Python (also for benchmarks): it
returns an IngestSummary with counts and seconds.

Measured (tests/data/ingest/measure_ingest_rate.py, 2-core x86_64 VM shared with other
work, best of 3): 2,000 JPEGs of 128 px with .txt captions into 128 px stores,
zarr 900 images/s on 1 rank, 1,600 on 2; hdf5 1,200 and 2,150. About 0.6 ms of each
image is decoding and staging, the rest compaction into the store (zstd for zarr).
GalaxySD-sized 424 px JPEGs shrunk to 128 px: ~300 images/s on 1 rank, ~530 on 2.
"""

from __future__ import annotations

import importlib
from typing import Any

from galaxy_hpc.data.ingest.config import IngestConfig

# Imported on first use, so that loading an ingest config (galaxy_hpc.jobs does, for
# every command) does not import PIL, astropy and the store backends.
_LAZY = {
    "run_ingest": "galaxy_hpc.data.ingest.pipeline",
    "IngestSummary": "galaxy_hpc.data.ingest.summary",
    "read_rejects_csv": "galaxy_hpc.data.ingest.rejects",
    "rejects_path": "galaxy_hpc.data.ingest.rejects",
}

__all__ = ["IngestConfig", "IngestSummary", "read_rejects_csv", "rejects_path", "run_ingest"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
