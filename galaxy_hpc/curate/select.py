"""`galaxy-hpc select STORE --where EXPR --out NEW`: the rows of a store where a condition
on its columns holds, as a new store, on any number of ranks.

Real catalogues have rows a job cannot use (a redshift unknown, a class left out, a
magnitude past the survey's limit), and the jobs that need every row's value refuse
them (the GAN's conditions, for one). Rather than re-ingest, select writes the rows to
keep, every column with them, as a store every command reads; the source is never
changed. The filter is hpc.store.where's (columns, constants, comparisons, in,
and/or/not, finite/isnan/abs/log10; never run as Python).

The new store keeps the source's attributes and adds `selected_from` (source path and
checksum, the filter, the counts). A rerun of the same command finishes or reports the
store; one with another filter or source is refused unless `overwrite` (the fingerprint
rule of hpc.outputs).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.curate.config import SelectConfig
from galaxy_hpc.curate.outputs import copy_items, output_spec
from hpc.comm import Comm, job_comm, on_root
from hpc.dist import resolve_env
from hpc.files import check_writable
from hpc.store import open_store
from hpc.store.where import select_from

FINGERPRINT_VERSION = 1


@dataclasses.dataclass
class SelectResult:
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def summary(self) -> str:
        d = self.data
        state = "was already complete" if d["already_complete"] else "written"
        return (f"selected {d['num_selected']:,} of {d['num_items']:,} items where "
                f"{d['where']}: {d['out']} {state} ({d['num_ranks']} rank(s), "
                f"{d['seconds']:.1f} s); checksum {d['checksum']}")


def _selection(store: Any, where: str) -> np.ndarray:
    return np.flatnonzero(select_from(where, list(store.spec.columns), store.read_column,
                                      len(store)))


def _prepare(cfg: SelectConfig, store: Any, items: np.ndarray) -> dict[str, Any]:
    """Rank 0: the fingerprint checked against what is at out (or out removed)."""
    from hpc.outputs import claim_output

    digest = hashlib.sha256(np.ascontiguousarray(items, dtype="<i8").tobytes()).hexdigest()
    fingerprint = {"version": FINGERPRINT_VERSION, "source_checksum": store.checksum,
                   "where": cfg.where, "items_sha256": digest}
    claim_output(cfg.out, fingerprint, key="select_fingerprint",
                 what="a selection of galaxy-hpc select", overwrite=cfg.overwrite)
    return fingerprint


def run_select(cfg: SelectConfig, *, comm: Comm | None = None) -> SelectResult:
    """Collective: every rank returns the same result."""
    from hpc.provenance import command_record

    start = time.perf_counter()
    for name in ("store", "where", "out"):
        if not getattr(cfg, name).strip():
            raise ValueError(f"select needs {name}: give --{name} (or {name}=...)")
    if Path(cfg.out).resolve() == Path(cfg.store).resolve():
        raise ValueError(f"--out {cfg.out} is the store itself: select writes a new store")
    comm = comm or job_comm(resolve_env(cuda_available=False))
    store = open_store(cfg.store)
    check_writable(cfg.out, "the selected store (out)")
    items = on_root(comm, lambda: _selection(store, cfg.where))
    if len(items) == 0:
        raise ValueError(f"--where {cfg.where!r} holds for none of the {len(store):,} items "
                         f"of {store.path}: nothing to write")
    fingerprint = on_root(comm, lambda: _prepare(cfg, store, items))
    counts = {"items": len(store), "selected": int(len(items))}
    attrs = {**store.attrs, **command_record(), "select_fingerprint": fingerprint,
             "selected_from": {"store": str(store.path), "checksum": store.checksum,
                               "where": cfg.where, "counts": counts}}
    spec = output_spec(store, False, cfg.out)
    already = on_root(comm, lambda: _complete(cfg.out))
    checksum = copy_items(cfg.out, store, items, spec=spec, attrs=attrs, comm=comm)
    data = {"command": "select", "store": str(store.path), "source_checksum": store.checksum,
            "where": cfg.where, "out": cfg.out, "num_items": len(store),
            "num_selected": int(len(items)), "already_complete": already,
            "checksum": comm.bcast(checksum), "num_ranks": comm.size,
            "seconds": time.perf_counter() - start}
    return SelectResult(data)


def _complete(out: str) -> bool:
    """Whether out is a finished store already (checked against the fingerprint first)."""
    from hpc.store.writer import detect_backend

    try:
        return bool(detect_backend(Path(out)).read_manifest().complete)
    except (FileNotFoundError, ValueError):
        return False
