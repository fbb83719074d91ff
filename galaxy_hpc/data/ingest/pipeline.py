"""`run_ingest(cfg)`: one source into one store, on one process or every rank of a job.

1. Rank 0 lists the records and plans (plan.prepare); the plan is broadcast.
2. Records are cut into blocks of `shard_size` in listing order; rank r takes blocks
   r, r + K, r + 2K, ... (K ranks). Decoding cost is even along most listings, the
   assignment needs no talking, and every rank's blocks are spread over the whole
   listing, so a slow region (big files in one folder) is shared. Blocks whose
   staging part exists (an earlier, killed run) are skipped.
3. Each block is decoded record by record; a bad record becomes a reject, a float
   image with some NaN or infinite pixels a note (or a reject: galaxy_hpc.data.nonfinite).
   The block's report (rejects, notes) is written durably, then its images and columns
   as the staging part numbered by the block.
4. Barrier; `compact_staging` on every rank copies the parts, in block order, into
   the store's shards; barrier; rank 0 writes the rejects file, finalizes and removes
   the staging folder (plan.finish).

The store holds the good records in listing order whatever K is, so its checksum does
not depend on K, nor on how often the job was killed and rerun.

A failure on any rank is shared at the next collective, so every rank stops with it
instead of waiting forever for the failed one.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from galaxy_hpc.data.ingest.config import IngestConfig
from galaxy_hpc.data.ingest.passthrough import source_jpeg
from galaxy_hpc.data.ingest.plan import Plan, finish, prepare
from galaxy_hpc.data.ingest.records import (
    DECODE_ERRORS,
    Reject,
    RejectError,
    reason_for,
)
from galaxy_hpc.data.ingest.rejects import (
    read_block_reports,
    rejects_path,
    write_block_report,
    write_rejects_csv,
)
from galaxy_hpc.data.ingest.sources import open_reader
from galaxy_hpc.data.ingest.summary import IngestSummary
from galaxy_hpc.data.nonfinite import COLUMN as NONFINITE_COLUMN
from galaxy_hpc.data.nonfinite import count as count_nonfinite
from hpc.comm import Comm, job_comm
from hpc.files import check_writable
from hpc.store import compact_staging, open_staging, staging_path

T = TypeVar("T")
_FIXED = ("id", "source", "crop_size", NONFINITE_COLUMN)


class RankFailed(ValueError):
    """Another rank failed; its log has the traceback. (A ValueError, so that the CLI
    reports it in one line on rank 0's terminal.)"""


def _shared(comm: Comm, work: Callable[[], T], *, root_only: bool = False) -> T:
    """Run `work` on every rank (or on rank 0 only, broadcasting its result) and make a
    failure everyone's: the failing rank re-raises its error, the others RankFailed."""
    result: Any = None
    failure, error = None, None
    if not root_only or comm.rank == 0:
        try:
            result = work()
        except Exception as caught:  # noqa: BLE001 - re-raised below
            error = caught
            failure = (comm.rank, type(caught).__name__, str(caught))
    if root_only:
        result, failure = comm.bcast((result, failure))
        failures = [failure]
    else:
        failures = comm.allgather(failure)
    failed = [f for f in failures if f is not None]
    if error is not None:
        raise error
    if failed:
        rank, kind, message = failed[0]
        logs = os.environ.get("GHPC_RANK_LOG_DIR") or "logs/ranks"
        raise RankFailed(f"rank {rank} failed ({kind}: {message}); its output is in "
                         f"{logs}/rank-{rank:05d}.log")
    return result


def _nonfinite(cfg: IngestConfig, image: np.ndarray) -> tuple[np.ndarray, int, str]:
    """(the image to store, its count of NaN/inf values, the note); RejectError with
    nonfinite=reject. The count is of the decoded image, before any fill."""
    found = count_nonfinite(image)
    if not found:
        return image, 0, ""
    what = f"{found} of {image.size} values are NaN or infinite"
    if cfg.nonfinite == "reject":
        raise RejectError("some_nonfinite", what)
    if cfg.nonfinite == "zero":
        return np.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0), found, \
            f"nonfinite_pixels: {what}; set to 0 (nonfinite=zero)"
    return image, found, f"nonfinite_pixels: {what}; kept (nonfinite=keep)"


def _decode_block(cfg: IngestConfig, plan: Plan, reader: Any, block: int, bar: Any
                  ) -> tuple[np.ndarray, dict[str, Any], list[Reject], Counter[str], list[Reject]]:
    listing, spec = plan.listing, plan.spec
    first = block * cfg.shard_size
    stop = min(len(listing), first + cfg.shard_size)
    images: Any = ([None] * (stop - first) if spec.keeps_jpeg
                   else np.empty((stop - first, *spec.image_shape), dtype=spec.image_dtype))
    decoded_names = [n for n in spec.columns if n not in listing.columns and n not in _FIXED]
    decoded: dict[str, list[Any]] = {name: [] for name in decoded_names}
    keep, crops, counts, rejects, notes, missing = [], [], [], [], [], Counter()
    for index in range(first, stop):
        if index in listing.refused:
            rejects.append(Reject(listing.sources[index], listing.refused[index],
                                  listing.ids[index]))
            bar.update(1)
            continue
        try:
            item = reader.decode(index)
            image, found, note = _nonfinite(cfg, item.image)
        except (RejectError, *DECODE_ERRORS) as error:
            rejects.append(Reject(listing.sources[index], reason_for(error), listing.ids[index]))
        else:
            # jpeg-source: the file itself (a file ingest would change stops the job)
            images[len(keep)] = (source_jpeg(listing.sources[index], cfg.size)
                                 if spec.keeps_jpeg else image)
            keep.append(index)
            crops.append(item.crop_size)
            counts.append(found)
            if note:
                notes.append(Reject(listing.sources[index], note, listing.ids[index]))
            for name in decoded_names:
                decoded[name].append(item.columns[name])
            missing.update(item.missing)
        bar.update(1)
    rows = np.array(keep, dtype=np.int64)
    columns: dict[str, Any] = {"id": listing.ids[rows], "source": listing.sources[rows],
                               "crop_size": np.array(crops, dtype=np.int64)}
    if NONFINITE_COLUMN in spec.columns:
        columns[NONFINITE_COLUMN] = np.array(counts, dtype=np.int64)
    columns.update({name: values[rows] for name, values in listing.columns.items()})
    for name, values in decoded.items():
        kind = object if spec.columns[name] == "str" else spec.columns[name]
        columns[name] = np.array(values, dtype=kind).reshape(len(values))
    return images[: len(keep)], columns, rejects, missing, notes


def _ingest_blocks(cfg: IngestConfig, plan: Plan, blocks: list[int], show: str | None) -> None:
    from tqdm import tqdm

    staging = open_staging(cfg.out, plan.spec)
    reader = open_reader(cfg, plan.listing)
    total = sum(min(cfg.shard_size, len(plan.listing) - b * cfg.shard_size) for b in blocks)
    with tqdm(total=total, unit="img", desc=show, disable=show is None, file=sys.stderr,
              mininterval=0.5) as bar:
        for block in blocks:
            images, columns, rejects, missing, notes = _decode_block(cfg, plan, reader, block,
                                                                     bar)
            write_block_report(staging.root, block, rejects, missing, notes)  # before the part
            staging.write_part(block, images, columns)


def run_ingest(cfg: IngestConfig, *, progress: bool = True,
               command: str | None = None) -> IngestSummary:
    """Ingest `cfg.source` into `cfg.out`. Call it on every rank (or alone); every rank
    returns the same summary. Raises ValueError for bad input that stops the whole job
    (nothing found, bad config, every input rejected); rejected records only show in
    the summary (exit_code 3) and the rejects file."""
    start = time.perf_counter()
    check_writable(cfg.out, "the store")  # every rank, before any collective
    comm = job_comm()
    plan = _shared(comm, lambda: prepare(cfg, comm.size), root_only=True)
    if isinstance(plan, IngestSummary):
        return plan
    assert plan is not None
    mine = [b for b in range(comm.rank, plan.num_blocks, comm.size) if b not in plan.completed]
    show = f"ingest rank 0/{comm.size}" if progress and comm.rank == 0 else None
    _shared(comm, lambda: _ingest_blocks(cfg, plan, mine, show))
    if sum(open_staging(cfg.out, plan.spec).part_counts().values()) == 0:
        _shared(comm, lambda: _all_rejected(cfg, plan), root_only=True)
    _shared(comm, lambda: compact_staging(cfg.out, comm.rank, comm.size))
    return _shared(comm, lambda: finish(cfg, plan, start=start, num_ranks=comm.size,
                                        command=command), root_only=True)


def _all_rejected(cfg: IngestConfig, plan: Plan) -> None:
    block_rejects, _, _ = read_block_reports(staging_path(cfg.out), plan.num_blocks)
    rejects = plan.listing.rejects + block_rejects
    rejected = rejects_path(cfg.out)
    write_rejects_csv(rejected, rejects)
    shutil.rmtree(staging_path(cfg.out))
    raise ValueError(f"all {len(rejects)} inputs were rejected, nothing to store; reasons in "
                     f"{rejected}")
