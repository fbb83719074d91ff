"""The job behind `galaxy-hpc caption --predictor|--vlm ... STORE`: a new store holding
the source's images and columns plus the columns a captioner adds.

A store is immutable once finalized (its checksum names the data set), so captions go
into a new store. Shard k of the new store is shard k of the source. Ranks (mpiexec/srun)
take the new store's pending shards in turn; a killed job rerun with the same command
writes only the shards left, and a store made from another source, model or setting is
refused (hpc.outputs), unless --overwrite. What differs between the two ways of
captioning is a `Captioning`: the columns it adds and the callable that fills them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FINGERPRINT_VERSION = 1


@dataclass
class Captioning:
    """One way of captioning a store, as the shared job needs it."""

    what: str  # the command that makes such stores, for refusals
    columns: dict[str, str]  # new column -> dtype; the first is the caption column
    column_info: dict[str, dict[str, Any]]
    fingerprint: Callable[[], dict[str, Any]]  # rank 0 only: what the output is made from
    caption: Callable[[Any, int, int], dict[str, np.ndarray]]  # (source, first, stop)
    provenance: dict[str, Any] = field(default_factory=dict)  # store attrs and summary


def default_out(store_path: Path) -> Path:
    """`<stem>.captioned.<suffix>` beside the source (cutouts.zarr -> cutouts.captioned.zarr)."""
    stem, dot, suffix = store_path.name.rpartition(".")
    return store_path.with_name(f"{stem}.captioned.{suffix}" if dot else f"{suffix}.captioned")


def output_spec(source: Any, out: Path, captioning: Captioning) -> Any:
    """The source's spec plus the new columns; the backend from `out`'s suffix (the
    source's when it names none), with the source's compression if the backend is the same."""
    from hpc.store import StoreSpec, backend_for_path

    spec = source.spec
    backend = backend_for_path(out, None, default=spec.backend)
    same = backend == spec.backend
    taken = [c for c in captioning.columns if c in spec.columns]
    if taken and taken[0] == next(iter(captioning.columns)):
        raise ValueError(f"{source.path} already has a {taken[0]!r} column; name another with "
                         f"--column (e.g. --column auto_caption)")
    if taken:
        raise ValueError(f"{source.path} already has a column {taken[0]!r}; pick another "
                         f"--prefix")
    return StoreSpec(image_shape=spec.image_shape, image_dtype=spec.image_dtype,
                     columns={**spec.columns, **captioning.columns}, shard_size=spec.shard_size,
                     backend=backend, compression=spec.compression if same else None,
                     compression_level=spec.compression_level if same else None,
                     column_info={**spec.column_info, **captioning.column_info})


def _prepare(source: Any, out: Path, spec: Any, captioning: Captioning, overwrite: bool
             ) -> dict:
    """Rank 0: start over, refuse another job's store, or create/reopen the new store."""
    import galaxy_hpc
    from hpc.outputs import claim_output
    from hpc.provenance import command_record
    from hpc.store import create_store

    fingerprint = {"version": FINGERPRINT_VERSION, "source_checksum": source.checksum,
                   **captioning.fingerprint()}
    claim_output(out, fingerprint, key="caption_fingerprint",
                 what=f"a store of {captioning.what}", overwrite=overwrite)
    attrs = {**source.attrs, **command_record(),
             "galaxy_hpc_version": galaxy_hpc.__version__,
             "captioned_from": {"store": str(source.path), "checksum": source.checksum},
             "captioned_with": captioning.provenance,
             "caption_fingerprint": fingerprint}
    writer = create_store(out, spec, num_items=len(source), attrs=attrs)
    complete = writer.manifest.complete
    return {"complete": complete, "checksum": writer.manifest.checksum if complete else None,
            "pending": [] if complete else writer.pending_shards()}


def run_caption_job(args: Any, build: Callable[[Any, Any], Captioning]) -> dict[str, Any]:
    """Run on every rank (or alone); every rank returns the same summary. `build(source,
    env)` makes the Captioning on each rank (loading its model there)."""
    from tqdm import tqdm

    from hpc.comm import job_comm, on_root
    from hpc.dist import resolve_env
    from hpc.files import check_writable
    from hpc.outputs import remove_leftovers
    from hpc.store import finalize_store, open_store, open_store_for_writing

    started = time.perf_counter()
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    source = open_store(args.source)
    out = Path(args.out) if args.out else default_out(source.path)
    if out.resolve() == source.path.resolve():
        raise ValueError(f"--out {out} is the source store; a store is never changed in place")
    check_writable(out, "the captioned store")  # every rank, before any collective
    env = resolve_env(cuda_available=False)
    comm = job_comm(env)
    captioning = build(source, env)
    spec = output_spec(source, out, captioning)
    setup = on_root(comm, lambda: _prepare(source, out, spec, captioning, args.overwrite))
    summary = {"out": str(out), "source": str(source.path), **captioning.provenance,
               "num_items": len(source), "column": next(iter(captioning.columns)),
               "num_ranks": comm.size, "shards_total": source.num_shards}
    if setup["complete"]:
        return {**summary, "checksum": setup["checksum"], "shards_written": [],
                "seconds": time.perf_counter() - started, "already_complete": True}
    comm.barrier()
    writer = open_store_for_writing(out)
    mine = setup["pending"][comm.rank::comm.size]
    with tqdm(mine, desc=f"caption (rank 0 of {comm.size})", unit="shard", file=sys.stderr,
              disable=comm.rank != 0 or args.json) as bar:
        for shard in bar:
            first, stop = writer.shard_bounds(shard)
            columns = {name: source.read_column(name, first, stop) for name in source.columns}
            columns.update(captioning.caption(source, first, stop))
            writer.write_shard(shard, source.read_for(writer.spec, np.arange(first, stop)),
                               columns)
    comm.barrier()

    def finish() -> str:
        checksum = finalize_store(out)
        remove_leftovers([out])
        return checksum

    checksum = on_root(comm, finish)
    return {**summary, "checksum": checksum, "shards_written": setup["pending"],
            "seconds": time.perf_counter() - started, "already_complete": False}
