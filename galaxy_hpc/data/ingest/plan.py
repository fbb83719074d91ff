"""Rank 0's bookends of an ingest: the plan before any block, the store after the last.

Before: list the records, derive the store spec, and fingerprint the run (config,
spec and a digest of every record's id, source and listed values). The fingerprint is
kept in the staging folder and then in the finished store, so that a rerun of the same
command resumes (or reports the finished store) and a run with other inputs or settings
stops with the differences listed (hpc.outputs) instead of mixing parts of two ingests.

After: gather the rejects into `X.rejects.csv` and the notes into `X.notes.csv` (each
only when it has rows), finalize the store with its provenance, remove the staging
folder and the temporary leftovers of killed runs - in that order, so a kill at any
point leaves something the rerun completes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import galaxy_hpc
from galaxy_hpc.data.columns import store_column_info
from galaxy_hpc.data.ingest.config import IngestConfig
from galaxy_hpc.data.ingest.passthrough import check_source
from galaxy_hpc.data.ingest.preprocess import __doc__ as RESAMPLE_DOC
from galaxy_hpc.data.ingest.records import Listing
from galaxy_hpc.data.ingest.rejects import (
    count_by_reason,
    durable_write,
    notes_path,
    read_block_reports,
    rejects_path,
    write_notes_csv,
    write_rejects_csv,
)
from galaxy_hpc.data.ingest.catalog import join_catalog
from galaxy_hpc.data.ingest.sources import detect_kind, list_records
from galaxy_hpc.data.ingest.summary import IngestSummary
from galaxy_hpc.data.nonfinite import COLUMN as NONFINITE_COLUMN
from hpc.config import to_dict
from hpc.outputs import check_fingerprint, remove_leftovers, remove_output, store_attrs
from hpc.provenance import command_line, working_directory
from hpc.store import (
    StoreSpec,
    finalize_store,
    open_staging,
    open_store,
    remove_staging,
    staging_path,
)

FINGERPRINT_FILE = "ingest.json"


@dataclass
class Plan:
    listing: Listing
    spec: StoreSpec
    num_blocks: int
    completed: set[int]  # blocks whose staging part exists
    fingerprint: dict[str, Any]


def store_spec(cfg: IngestConfig, listing: Listing) -> StoreSpec:
    # Values of a user's tables and headers: no unit that is only our own convention.
    columns = {"id": "str", "source": "str", **listing.column_types, "crop_size": "int64"}
    if listing.dtype != "uint8":
        columns[NONFINITE_COLUMN] = "int64"
    return StoreSpec(image_shape=(listing.channels, cfg.size, cfg.size),
                     image_dtype=listing.dtype, columns=columns, shard_size=cfg.shard_size,
                     backend=cfg.format, compression=cfg.compression,
                     column_info=store_column_info(columns, ours=False))


FINGERPRINT_VERSION = 2  # 1: one sha256 over everything, which could not say what differed


def fingerprint(cfg: IngestConfig, listing: Listing, spec: StoreSpec) -> dict[str, Any]:
    settings = {k: v for k, v in to_dict(cfg).items() if k not in ("out", "overwrite")}
    digest = hashlib.sha256()
    for values in (listing.ids, listing.sources, *listing.columns.values()):
        if values.dtype == object:
            digest.update("\x00".join(values.tolist()).encode("utf-8", "surrogatepass"))
        else:
            digest.update(np.ascontiguousarray(values).tobytes())
        digest.update(b"\x01")
    return {"version": FINGERPRINT_VERSION, "config": settings, "kind": listing.kind,
            "spec": spec.to_dict(),
            "records": {"count": len(listing), "sha256": digest.hexdigest()}}


def _side_files(out: Path) -> list[Path]:
    """What an ingest writes beside its store."""
    return [staging_path(out), rejects_path(out), notes_path(out)]


def _finished_summary(cfg: IngestConfig, fp: dict[str, Any],
                      num_ranks: int) -> IngestSummary | None:
    """The summary of an earlier run of this same ingest that finished; None to go on."""
    out = Path(cfg.out)
    try:
        store = open_store(out)
    except (ValueError, FileNotFoundError):
        if store_attrs(out) is None or staging_path(out).exists():
            return None  # nothing there yet, or killed while compacting: the rerun finishes
        raise ValueError(f"{out} is an unfinished store without its staging folder; pass "
                         "--overwrite (overwrite=true) to replace it, or choose another "
                         "--out") from None
    attrs = store.attrs
    check_fingerprint(out, attrs.get("ingest_fingerprint"), fp,
                      what="a store of galaxy-hpc ingest")
    shutil.rmtree(staging_path(out), ignore_errors=True)  # killed while cleaning up
    remove_leftovers([out, *_side_files(out)])
    counts = attrs["counts"]
    rejected = rejects_path(out) if counts["rejected"] else None
    noted = notes_path(out) if counts.get("noted") else None
    return IngestSummary(
        store=str(out), rejects_file=str(rejected) if rejected else None,
        kind=attrs["source_kind"], format=cfg.format, image_shape=list(store.spec.image_shape),
        image_dtype=store.spec.image_dtype, num_inputs=counts["inputs"],
        num_ingested=counts["ingested"], num_rejected=counts["rejected"],
        rejects_by_reason=counts["by_reason"], checksum=store.checksum, num_ranks=num_ranks,
        seconds=0.0, already_complete=True, notes=attrs.get("notes", {}),
        notes_file=str(noted) if noted else None, num_noted=counts.get("noted", 0))


def prepare(cfg: IngestConfig, num_ranks: int) -> Plan | IngestSummary:
    """Rank 0: the plan every rank follows, or the summary of a finished earlier run."""
    out = Path(cfg.out)
    if cfg.overwrite:
        remove_output(out, also=_side_files(out))
    listing = list_records(cfg, detect_kind(cfg))
    if cfg.catalog.table:
        join_catalog(listing, cfg.catalog)
    if len(listing) == 0:
        rejected = rejects_path(out)
        write_rejects_csv(rejected, listing.rejects)
        if not listing.rejects:
            raise ValueError(f"{cfg.source}: no inputs found, nothing to store")
        raise ValueError(f"all {len(listing.rejects)} inputs were rejected, nothing to store; "
                         f"reasons in {rejected}")
    check_source(cfg, listing)
    spec = store_spec(cfg, listing)
    fp = fingerprint(cfg, listing, spec)
    finished = _finished_summary(cfg, fp, num_ranks)
    if finished is not None:
        return finished
    marker = staging_path(out) / FINGERPRINT_FILE
    if marker.is_file():
        check_fingerprint(staging_path(out), json.loads(marker.read_text())["fingerprint"], fp,
                          what=f"part of an ingest into {out}")
    staging = open_staging(out, spec)
    if not marker.is_file():
        durable_write(marker, json.dumps({"fingerprint": fp}).encode())
    num_blocks = -(-len(listing) // cfg.shard_size)
    completed = {b for b in staging.completed_parts() if b < num_blocks}
    return Plan(listing, spec, num_blocks, completed, fp)


def finish(cfg: IngestConfig, plan: Plan, *, start: float, num_ranks: int,
           command: str | None) -> IngestSummary:
    """Rank 0, once every destination shard is written: rejects and notes files, finalize,
    clean up."""
    out = Path(cfg.out)
    block_rejects, missing, noted = read_block_reports(staging_path(out), plan.num_blocks)
    rejects = plan.listing.rejects + block_rejects
    rejected, notes_file = rejects_path(out), notes_path(out)
    write_rejects_csv(rejected, rejects)
    write_notes_csv(notes_file, noted)
    counts = open_staging(out, plan.spec).part_counts()
    num_ingested = sum(counts.values())
    notes = dict(plan.listing.notes)
    if plan.listing.kind == "fits":
        notes["missing_header_values"] = dict(sorted(missing.items()))
    if plan.spec.image_dtype != "uint8":
        notes["nonfinite"] = {"images": len(noted), "mode": cfg.nonfinite}
    by_reason = count_by_reason(rejects)
    attrs = {
        "ingest_fingerprint": plan.fingerprint,
        "source": cfg.source,
        "source_kind": plan.listing.kind,
        "inputs": plan.listing.inputs,
        "command": command or command_line(),
        "working_directory": working_directory(),
        "galaxy_hpc_version": galaxy_hpc.__version__,
        "ingested_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "image_size": cfg.size,
        "counts": {"inputs": num_ingested + len(rejects), "ingested": num_ingested,
                   "rejected": len(rejects), "by_reason": by_reason, "noted": len(noted)},
        "rejects_file": rejected.name if rejects else None,
        "notes_file": notes_file.name if noted else None,
        "preprocessing": " ".join(RESAMPLE_DOC.split()),
        "notes": notes,
        "ingest_config": to_dict(cfg),
    }
    checksum = finalize_store(out, attrs)
    remove_staging(out)
    remove_leftovers([out, *_side_files(out)])  # of killed earlier runs
    return IngestSummary(
        store=str(out), rejects_file=str(rejected) if rejects else None,
        kind=plan.listing.kind, format=cfg.format,
        image_shape=list(plan.spec.image_shape), image_dtype=plan.spec.image_dtype,
        num_inputs=num_ingested + len(rejects), num_ingested=num_ingested,
        num_rejected=len(rejects), rejects_by_reason=by_reason, checksum=checksum,
        num_ranks=num_ranks, seconds=time.perf_counter() - start, blocks_total=plan.num_blocks,
        blocks_resumed=len(plan.completed), notes=notes,
        notes_file=str(notes_file) if noted else None, num_noted=len(noted))
