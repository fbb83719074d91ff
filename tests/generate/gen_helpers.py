"""Helpers the generation tests import (a module of its own: every test folder has a
conftest.py, and `from conftest import ...` finds whichever one pytest imported last)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

# One thread per process; no SLURM_JOB_ID, so that a preempted run outside Slurm exits 75
# instead of calling scontrol.
ENV = {**{k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"}, "OMP_NUM_THREADS": "1"}


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump({"kind": "generate", **data}, sort_keys=False))
    return path


def store_content(path) -> tuple[str, np.ndarray, dict]:
    from hpc.store import open_store

    store = open_store(path)
    return store.checksum, store.read_images(), {c: store.read_column(c) for c in store.columns}
