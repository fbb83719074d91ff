"""The `generate` job: a synthetic catalog into a store, on one process or every rank.

1. Every rank loads the model onto its device and builds the condition source (both
   deterministic: no communication).
2. Rank 0 hashes the model files, then creates the store or reopens it; a store made
   from another config is refused with the differences listed (hpc.outputs), and
   `overwrite` deletes it first (not when this same Slurm job is being requeued). The
   pending shards (those without a completion record: never written, or half-written by
   a killed run) and the model hash are broadcast.
3. Ranks take pending shards from a shared counter (hpc.workqueue) as they become free,
   so a slow GPU never holds the others back, and write each whole shard. Objects depend
   only on (catalog seed, index) and batches are fixed per shard, so which rank makes a
   shard, or how often the job was killed, changes no byte.
4. When the queue is empty: rank 0 finalizes the store (checksum) and writes the FITS
   table beside it.

A kill at any moment loses at most the shards in flight: the rerun's pending list has
them again. A preemption signal (USR1/USR2; TERM stops without requeue) makes each rank
finish the shard it is making and take no more; the job then exits 75 and requeues
(hpc.preempt), and the next run finishes the rest.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from galaxy_hpc.generate.config import GenerateConfig


@dataclass
class GenerateSummary:
    out: str
    table: str | None  # the FITS table; None until the catalog is complete
    num_objects: int
    checksum: str | None  # None when preempted before the end
    num_ranks: int
    shards_total: int
    shards_this_run: int  # by every rank, in this run
    shards_per_rank: list[int]  # this run's shards by rank: how the queue spread the work
    objects_this_run: int
    seconds: float  # the whole run: loading, hashing, generating, finalizing
    queue_seconds: float  # from the first shard handed out to the last one written
    preempted: bool
    model_hash: str
    shards_left: list[int] = field(default_factory=list)  # pending when this run started
    already_complete: bool = False  # an earlier run finished it: nothing was made

    @property
    def ok(self) -> bool:
        return self.checksum is not None

    @property
    def objects_per_s(self) -> float:
        """All ranks together, while generating (start-up and finalizing left out)."""
        return self.objects_this_run / self.queue_seconds if self.queue_seconds else 0.0

    def summary(self) -> str:
        from hpc.store.writer import format_shards

        if self.already_complete:
            return (f"{self.out} was already complete: a catalog of {self.num_objects:,} objects "
                    f"(table {self.table}), checksum {self.checksum}; nothing to do")
        resumed = ""
        if len(self.shards_left) < self.shards_total:
            resumed = (f"resumed: {len(self.shards_left)} of {self.shards_total} shards were "
                       f"left (shards {format_shards(self.shards_left)}); ")
        made = (f"{self.objects_this_run:,} objects this run ({self.num_ranks} rank(s), "
                f"{self.seconds:.1f} s in all, {self.objects_per_s:,.2f} objects/s while "
                "generating)")
        if self.preempted and not self.ok:
            return (f"{resumed}preempted: {made}; {self.out} is not complete yet, run the same "
                    "command again to finish it")
        return (f"{resumed}wrote a catalog of {self.num_objects:,} objects to {self.out} and "
                f"{self.table}: {made}; checksum {self.checksum}")

    def line(self) -> str:
        return self.summary()


def build_catalog(cfg: GenerateConfig, local_rank: int = 0) -> Any:
    """Model, conditions and runtime of `cfg` on this process (every rank calls it)."""
    from galaxy_hpc.generate.catalog import Catalog
    from galaxy_hpc.generate.conditions import build_conditions
    from galaxy_hpc.generate.loader import load_generator
    from galaxy_hpc.generate.runtime import resolve_runtime

    from galaxy_hpc.generate.noise import survey_noise_for

    runtime = resolve_runtime(cfg.runtime, local_rank)
    generator = load_generator(cfg.model, cfg.sampler, runtime, size=cfg.size)
    # Every rank measures the same images of noise.match the same way: no communication.
    noise = survey_noise_for(cfg.noise, tuple(generator.image_shape), generator.image_dtype)
    return Catalog(cfg=cfg, generator=generator, source=build_conditions(cfg, generator),
                   runtime=runtime, noise=noise)


def open_catalog_store(catalog: Any, command: str | None) -> dict[str, Any]:
    """Rank 0: hash the model, start over or check the existing store's fingerprint,
    create or reopen the store, list what is left to do."""
    from galaxy_hpc.generate.hashing import model_hashes
    from hpc.outputs import check_fingerprint, remove_output, store_attrs
    from hpc.store import create_store, open_store_for_writing

    cfg = catalog.cfg
    catalog.model_hashes = model_hashes(catalog.generator.identity().get("files", {}))
    attrs = catalog.attrs(command)
    job = os.environ.get("SLURM_JOB_ID")
    attrs["generate"]["slurm_job_id"] = job
    wanted = attrs["generate"]["fingerprint"]
    existing = store_attrs(cfg.out)
    stored = (existing or {}).get("generate") or {}
    # A requeued job reruns its command, overwrite included: the store this same job
    # started is its own work to finish, not an old output to delete.
    requeued = job is not None and stored.get("slurm_job_id") == job
    if cfg.overwrite and not requeued:
        remove_output(cfg.out, also=[cfg.table_path])
        existing = None
    if existing is not None:
        check_fingerprint(cfg.out, stored.get("fingerprint"), wanted,
                          what="a catalog of galaxy-hpc generate")
        _warn_runtime(stored.get("runtime", {}), attrs["generate"]["runtime"])
    writer = create_store(cfg.out, catalog.spec(), num_items=catalog.num_objects, attrs=attrs)
    complete = writer.manifest.complete
    pending = [] if complete else writer.pending_shards()
    writer = open_store_for_writing(cfg.out)
    return {"pending": pending, "num_shards": writer.num_shards,
            "model_hashes": catalog.model_hashes, "complete": complete,
            "already_complete": complete and cfg.table_path.is_file(),
            "checksum": writer.manifest.checksum}


def _warn_runtime(stored: dict[str, Any], now: dict[str, Any]) -> None:
    changed = [f"{key} {stored.get(key)!r} -> {now.get(key)!r}" for key in sorted(now)
               if stored.get(key) != now.get(key)]
    if changed:
        print(f"galaxy-hpc generate: warning: resuming on another runtime ({'; '.join(changed)}); "
              "the shards made now may differ in low bits from an uninterrupted run there",
              file=sys.stderr, flush=True)


def _fail_fast(comm: Any, error: BaseException) -> None:
    """A rank that fails mid-queue ends the whole job now rather than leaving the others
    to finish every shard and then wait for it forever."""
    if comm.size == 1:
        raise error
    from hpc.logs import tell_terminal

    traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    tell_terminal(f"galaxy-hpc generate: rank {comm.rank} failed ({type(error).__name__}: "
                  f"{error}); ending the job")
    os._exit(1)


def run_generate(cfg: GenerateConfig, *, progress: bool = True,
                 command: str | None = None) -> GenerateSummary:
    """Make (or finish) the catalog of `cfg`. Call on every rank (or alone); every rank
    returns the same summary."""
    import numpy as np

    from galaxy_hpc.generate.fits_table import write_catalog_table
    from galaxy_hpc.generate.progress import CatalogProgress
    from hpc.comm import job_comm, on_root
    from hpc.dist import resolve_env
    from hpc.files import check_writable
    from hpc.outputs import remove_leftovers
    from hpc.preempt import PreemptionWatch
    from hpc.store import finalize_store, open_store, open_store_for_writing
    from hpc.workqueue import dynamic_items

    start = time.perf_counter()
    # Every rank, before the model loads or any collective.
    check_writable(cfg.out, "the catalog store")
    check_writable(cfg.table_path, "the catalog table")
    env = resolve_env(cuda_available=False)
    comm = job_comm(env)
    with PreemptionWatch() as watch:
        catalog = build_catalog(cfg, env.local_rank)
        setup = on_root(comm, lambda: open_catalog_store(catalog, command))
        catalog.model_hashes = setup["model_hashes"]
        if setup["already_complete"]:
            return GenerateSummary(
                out=str(cfg.out), table=str(cfg.table_path), num_objects=catalog.num_objects,
                checksum=setup["checksum"], num_ranks=comm.size,
                shards_total=setup["num_shards"], shards_this_run=0,
                shards_per_rank=[0] * comm.size, objects_this_run=0,
                seconds=time.perf_counter() - start, queue_seconds=0.0, preempted=False,
                model_hash=catalog.model_hash, already_complete=True)
        writer = open_store_for_writing(cfg.out)
        made = objects = 0
        show = progress and comm.rank == 0
        with CatalogProgress(writer, enabled=show,
                             desc=f"generate ({comm.size} rank{'s' * (comm.size > 1)})"):
            shards = dynamic_items(setup["pending"], comm, name="ghpc-generate")
            queue_start = time.perf_counter()
            try:
                for shard in shards:
                    if watch.received is not None:
                        break  # the shard in flight was written; this one stays pending
                    first, stop = writer.shard_bounds(shard)
                    images, columns = catalog.make_shard(first, stop)
                    writer.write_shard(shard, images, columns)
                    made, objects = made + 1, objects + stop - first
            except Exception as error:  # noqa: BLE001 - ends the job on every rank
                _fail_fast(comm, error)
            finally:
                shards.close()  # the queue's closing barrier, also after a break
            queue_seconds = time.perf_counter() - queue_start
        stopped, requeue, objects_all = (int(v) for v in comm.allreduce_sum(
            np.array([watch.received is not None, watch.wants_requeue, objects],
                     dtype=np.int64)))
        per_rank = [int(n) for n in comm.allgather(made)]
        # Every rank's writes precede the reductions above; one rank looks at the result.
        remaining = comm.bcast(len(writer.pending_shards()) if comm.rank == 0 else None)
        checksum = table = None
        if remaining == 0:
            def finish() -> tuple[str, str]:
                digest = finalize_store(cfg.out)
                table = str(write_catalog_table(open_store(cfg.out), cfg.table_path))
                remove_leftovers([cfg.out])  # of killed earlier runs; every rank is done
                return digest, table

            checksum, table = on_root(comm, finish)
        preempted = bool(stopped) and remaining > 0
        summary = GenerateSummary(
            out=str(cfg.out), table=table, num_objects=catalog.num_objects, checksum=checksum,
            num_ranks=comm.size, shards_total=setup["num_shards"],
            shards_this_run=sum(per_rank), shards_per_rank=per_rank,
            objects_this_run=objects_all,
            seconds=time.perf_counter() - start,
            queue_seconds=comm.bcast(queue_seconds), preempted=preempted,
            model_hash=catalog.model_hash, shards_left=setup["pending"])
        if preempted and requeue:
            watch.requeue(rank=comm.rank)
        return summary

