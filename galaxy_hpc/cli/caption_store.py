"""`galaxy-hpc caption --predictor RUN STORE`: morphology captions for a store without
them, from a trained vote predictor.

Any survey cutout can get GalaxySD-style captions this way: the predictor (a train_dino
run, its predictor folder, or any VotePredictor) gives each galaxy's 37 per-question GZ2
fractions and the captioner (galaxy_hpc.data.captions) turns them into a caption. A
store is immutable once finalized (its checksum names the data set), so the result is
a new store: the same images and columns, plus the caption column and the predicted
fractions as `pred_<gz2 column>` columns, from which captions can be remade with other
thresholds without the model.

Shard k of the new store is shard k of the source. Ranks (mpiexec/srun) take the new
store's pending shards in turn; a killed job rerun with the same command writes only
the shards left, and a store made from another source, predictor or setting is refused
(hpc.outputs), unless --overwrite.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

FINGERPRINT_VERSION = 1


def default_out(store_path: Path) -> Path:
    """`<stem>.captioned.<suffix>` beside the source (cutouts.zarr -> cutouts.captioned.zarr)."""
    stem, dot, suffix = store_path.name.rpartition(".")
    return store_path.with_name(f"{stem}.captioned.{suffix}" if dot else f"{suffix}.captioned")


def output_spec(source: Any, out: Path, column: str, predicted: list[str], prefix: str
                ) -> Any:
    """The source's spec plus the new columns; the backend from `out`'s suffix (the
    source's when it names none), with the source's compression if the backend is the same."""
    from galaxy_hpc.data.columns import predicted_info
    from hpc.store import StoreSpec, backend_for_path

    spec = source.spec
    backend = backend_for_path(out, None, default=spec.backend)
    same = backend == spec.backend
    if column in spec.columns:
        raise ValueError(f"{source.path} already has a {column!r} column; name another with "
                         f"--column (e.g. --column auto_caption)")
    taken = [prefix + c for c in predicted if prefix + c in spec.columns]
    if taken:
        raise ValueError(f"{source.path} already has a column {taken[0]!r}; pick another "
                         f"--prefix")
    columns = {**spec.columns, column: "str", **{prefix + c: "float32" for c in predicted}}
    info = dict(spec.column_info)
    info[column] = {"description": "GalaxySD-style caption of predicted GZ2 vote shares"}
    info.update({prefix + c: predicted_info(c).as_dict() for c in predicted})
    return StoreSpec(image_shape=spec.image_shape, image_dtype=spec.image_dtype,
                     columns=columns, shard_size=spec.shard_size, backend=backend,
                     compression=spec.compression if same else None,
                     compression_level=spec.compression_level if same else None,
                     column_info=info)


def _prepare(source: Any, out: Path, spec: Any, fingerprint: dict, overwrite: bool) -> dict:
    """Rank 0: start over, refuse another job's store, or create/reopen the new store."""
    import galaxy_hpc
    from hpc.outputs import check_fingerprint, remove_output, store_attrs
    from hpc.provenance import command_line
    from hpc.store import create_store

    if overwrite:
        remove_output(out)
    else:
        stored = store_attrs(out)
        if stored is not None:
            check_fingerprint(out, stored.get("caption_fingerprint"), fingerprint,
                              what="a store of galaxy-hpc caption --predictor")
    attrs = {**source.attrs, "command": command_line(),
             "galaxy_hpc_version": galaxy_hpc.__version__,
             "captioned_from": {"store": str(source.path), "checksum": source.checksum},
             "caption_fingerprint": fingerprint}
    writer = create_store(out, spec, num_items=len(source), attrs=attrs)
    complete = writer.manifest.complete
    return {"complete": complete, "checksum": writer.manifest.checksum if complete else None,
            "pending": [] if complete else writer.pending_shards()}


def run_caption_store(args: Any) -> dict[str, Any]:
    """Run on every rank (or alone); every rank returns the same summary."""
    from tqdm import tqdm

    from galaxy_hpc.cli.predict_cmd import _device, predictor_folder
    from galaxy_hpc.data.captions import CaptionConfig, Captioner
    from galaxy_hpc.data.gz2 import ANSWERS, column_name
    from galaxy_hpc.generate.hashing import path_sha256
    from galaxy_hpc.models.store_predictions import predict_store
    from galaxy_hpc.models.vote_predictor import load_vote_predictor
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
    config = CaptionConfig(survey=args.survey, threshold=args.threshold,
                           odd_threshold=args.odd_threshold)
    captioner = Captioner(config)
    env = resolve_env(cuda_available=False)
    comm = job_comm(env)
    folder = predictor_folder(args.predictor)
    predictor = load_vote_predictor(folder, device=_device(args.device, env.local_rank))
    predicted = list(getattr(predictor, "answer_columns", None)
                     or [column_name(a) for a in ANSWERS])
    spec = output_spec(source, out, args.column, predicted, args.prefix)
    fingerprint = on_root(comm, lambda: {
        "version": FINGERPRINT_VERSION, "source_checksum": source.checksum,
        "predictor": path_sha256(folder),
        "caption": {"survey": config.survey, "threshold": config.threshold,
                    "odd_threshold": config.odd_threshold},
        "column": args.column,
        "prefix": args.prefix})
    setup = on_root(comm, lambda: _prepare(source, out, spec, fingerprint, args.overwrite))
    summary = {"out": str(out), "source": str(source.path), "predictor": str(folder),
               "num_items": len(source), "column": args.column, "num_ranks": comm.size,
               "shards_total": source.num_shards}
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
            fractions = predict_store(predictor, source, start=first, stop=stop,
                                      batch_size=args.batch_size)
            columns = {name: source.read_column(name, first, stop) for name in source.columns}
            columns[args.column] = np.array(captioner.captions(fractions), dtype=object)
            for k, name in enumerate(predicted):
                columns[args.prefix + name] = fractions[:, k]
            writer.write_shard(shard, source.read_images(first, stop), columns)
    comm.barrier()

    def finish() -> str:
        checksum = finalize_store(out)
        remove_leftovers([out])
        return checksum

    checksum = on_root(comm, finish)
    return {**summary, "checksum": checksum, "shards_written": setup["pending"],
            "seconds": time.perf_counter() - started, "already_complete": False}
