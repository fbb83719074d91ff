"""`galaxy-hpc dedup STORE --out CLEAN`: exact and near-duplicate removal, on any number
of ranks.

Every rank embeds its store shards (embed_pass.py; resumable), then searches its slice
of the items, every transform, in a FAISS index of all items as stored (groups.py; memory
N x D float32 plus its slice's N/K x T x D); rank 0 joins the pairs into groups and
writes the CSV and the page; then every rank writes its shards of the new store
(outputs.py). A rerun after a kill embeds only the missing shards and writes only
the missing output shards.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.curate.config import DedupConfig
from galaxy_hpc.curate.embed_pass import embed_shards, load_base, load_items, prepare_folder
from galaxy_hpc.curate.embedders import build_embedder
from galaxy_hpc.curate.groups import near_pairs, plan_duplicates
from galaxy_hpc.curate.outputs import write_csv, write_page, write_store
from galaxy_hpc.evaluate.extractors import pick_device
from galaxy_hpc.evaluate.inputs import extractor_input
from galaxy_hpc.evaluate.passes import progress
from hpc.comm import Comm, job_comm, on_root
from hpc.dist import resolve_env
from hpc.files import check_writable
from hpc.mpi import split_range
from hpc.store import open_store

# In the report folder: the digest of the plan the clean store was started from.
PLAN_RECORD = "out_plan.sha256"

@dataclasses.dataclass
class DedupResult:
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def summary(self) -> str:
        d, c = self.data, self.data["counts"]
        return "\n".join([
            f"{c['items']:,} items: kept {c['kept']:,}, removed {c['removed']:,} in "
            f"{c['groups']:,} group(s) ({c['exact_item']:,} exact items, {c['exact_image']:,} "
            f"exact images, {c['near']:,} near duplicates at cosine >= {d['threshold']})",
            f"extractor {d['extractor']} ({d['transforms']} transforms); kept: the lowest "
            "store index of each group",
            f"embedded {d['embedded']:,} item(s), {d['resumed']:,} from an earlier run; "
            f"{d['num_ranks']} rank(s), {d['embed_seconds']:.1f} s embedding "
            f"({d['embeddings_per_second']:,.0f} items/s), {d['search_seconds']:.2f} s FAISS "
            f"({d['index']})",
            f"wrote {d['out']} ({'every item, keep/duplicate_of columns' if d['mark'] else 'kept items'})",
            f"groups: {d['csv']}; page: {d['page']}"])


def report_folder(cfg: DedupConfig) -> Path:
    if cfg.report:
        return Path(cfg.report)
    out = Path(cfg.out)
    return out.with_name(out.stem + ".dedup")


def run_dedup(cfg: DedupConfig, *, show_progress: bool = True,
              comm: Comm | None = None) -> DedupResult:
    """Collective: every rank returns the same result."""
    start = time.perf_counter()
    for name in ("store", "out"):
        if not getattr(cfg, name):
            raise ValueError(f"DedupConfig.{name} is not set: give the {name} path")
    if Path(cfg.out).resolve() == Path(cfg.store).resolve():
        raise ValueError(f"--out {cfg.out} is the store itself: dedup writes a new store")
    env = resolve_env(cuda_available=False)
    comm = comm or job_comm(env)
    store = open_store(cfg.store)
    folder = report_folder(cfg)
    check_writable(cfg.out, "the clean store (out)")
    check_writable(folder, "the dedup report folder")
    if os.path.lexists(cfg.out) and not cfg.overwrite and not (folder / PLAN_RECORD).is_file():
        raise ValueError(f"{cfg.out} already exists and was not started by a dedup reporting "
                         f"to {folder}: give another --out, or --overwrite to replace it")
    pixels = on_root(comm, lambda: extractor_input(store, store, stretch_file=cfg.stretch,
                                                   rgb_bands=cfg.rgb_bands))
    device = pick_device(cfg.device, env.local_rank)
    embedder = build_embedder(cfg.extractor, weights=cfg.weights,
                              extractor_module=cfg.extractor_module, device=device)
    threshold = cfg.cosine_threshold()
    work = folder / "embeddings"
    prepare_folder(work, {"store_checksum": store.checksum, "extractor": embedder.spec,
                          "transforms": cfg.transforms, "pixels": pixels.to_dict(),
                          "batch_size": cfg.batch_size}, comm)
    bar = progress(len(store), f"dedup embeddings ({cfg.extractor}, rank 0 of {comm.size})",
                   show_progress and comm.rank == 0)
    comm.barrier()
    embed_start = time.perf_counter()
    try:
        done = embed_shards(store, work, embedder, pixels, transforms=cfg.transforms,
                            batch_size=cfg.batch_size, comm=comm, bar=bar)
    finally:
        bar.close()
    counts = comm.allgather(done)
    comm.barrier()
    embed_seconds = time.perf_counter() - embed_start

    # Every rank searches its slice of the items (all transforms) against all of them.
    search_start = time.perf_counter()
    base, hashes = load_base(work, len(store), store.spec.shard_size)
    mine = split_range(len(store), comm.rank, comm.size)
    queries = load_items(work, np.arange(mine.start, mine.stop), store.spec.shard_size) \
        if len(mine) else np.empty((0, 1, base.shape[1]), np.float32)
    found = near_pairs(base, queries, mine.start, threshold, cfg.neighbours,
                       index_kind=cfg.index, nprobe=cfg.nprobe)
    del base, queries
    gathered = comm.allgather(found)
    pairs = (np.concatenate([g[0] for g in gathered]), np.concatenate([g[1] for g in gathered]))

    def plan_on_root() -> Any:
        return plan_duplicates(len(store), pairs, store.read_item_digests(), hashes,
                               lambda rows: load_items(work, rows, store.spec.shard_size))

    plan = on_root(comm, plan_on_root)
    search_seconds = time.perf_counter() - search_start
    embedded = sum(c["embedded"] for c in counts)
    data = {
        "command": "dedup", "store": str(store.path), "source_checksum": store.checksum,
        "out": cfg.out, "mark": cfg.mark, "extractor": cfg.extractor,
        "extractor_spec": embedder.spec, "transforms": cfg.transforms,
        "threshold": threshold, "neighbours": cfg.neighbours, "index": cfg.index,
        "keep_rule": "lowest index",
        "counts": plan.counts(), "embedded": embedded,
        "resumed": sum(c["resumed"] for c in counts), "num_ranks": comm.size,
        "embed_seconds": embed_seconds, "search_seconds": search_seconds,
        "embeddings_per_second": embedded / max(embed_seconds, 1e-9),
        "input_description": pixels.describe(),
        "csv": str(folder / "duplicates.csv"), "page": str(folder / "index.html"),
    }
    facts = [f"{plan.counts()['removed']:,} of {len(store):,} items removed in "
             f"{len(plan.groups):,} group(s); each group keeps its lowest store index",
             f"extractor {cfg.extractor}, {cfg.transforms} transforms, cosine >= {threshold}; "
             f"{pixels.describe()}"]
    on_root(comm, lambda: (write_csv(folder / "duplicates.csv", store, plan),
                           write_page(folder, store, plan, pixels, cfg.max_groups_shown, facts)))
    attrs = {"dedup": {key: data[key] for key in ("store", "source_checksum", "extractor",
                                                  "transforms", "threshold", "keep_rule",
                                                  "counts", "mark")}}
    checksum = write_store(cfg.out, store, plan, mark=cfg.mark, attrs=attrs,
                           record=folder / PLAN_RECORD, comm=comm)
    data["out_checksum"] = comm.bcast(checksum)
    data["seconds"] = time.perf_counter() - start
    return DedupResult(comm.bcast(data))
