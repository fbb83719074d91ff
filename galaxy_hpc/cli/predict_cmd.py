"""`galaxy-hpc predict MODEL STORE`: predicted GZ2 vote fractions for every galaxy of a store.

MODEL is a vote predictor folder (predictor.json; e.g. the `predictor` folder of a
train_dino run, or that run's output folder). The result is a table beside the store,
not columns inside it: a store is immutable once finalized and its checksum covers
column values and the column list (hpc/store/README.md), so adding columns would
change the checksum that names the data set everywhere else (provenance, evaluation
reports); and one store gets predictions from many models. The table is FITS (or
CSV): `index` (the store index), `id` when the store has one, and the 37 predicted
per-question fractions named as the predictor's GZ2 columns with a prefix
(`pred_t01_smooth_or_features_a01_smooth_fraction`, ...). Its header records the
model, the store and the store's checksum, and each column's unit and description
(TUNITn/TCOMMn, from galaxy_hpc.data.columns). Join it to the store on `index`.

Under mpiexec/srun every rank takes a contiguous run of whole shards (shard-sized reads),
rank 0 gathers and writes; the table is the same for any number of ranks.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from galaxy_hpc.cli.batch import add_command, print_result
from hpc.hub import resolve_weights

TABLE_ENDINGS = (".fits", ".csv")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "predict", run=run,
        help="predicted GZ2 vote fractions for every galaxy of a store",
        description="Run a vote predictor (e.g. a train_dino run's predictor folder) over a "
        "store, batched; writes a FITS/CSV table beside the store with the 37 predicted "
        "per-question fractions per galaxy. MPI-parallel under mpiexec/srun (ranks take "
        "whole shards).")
    parser.add_argument("model", help="predictor folder (predictor.json), or a training run's "
                        "output folder holding predictor/")
    parser.add_argument("store", help="store of galaxies (zarr or hdf5)")
    parser.add_argument("--out", help="table to write, .fits or .csv (default: "
                        "STORE_NAME.predictions.fits beside the store)")
    parser.add_argument("--overwrite", action="store_true", help="replace an --out file that "
                        "is not an earlier predictions table (one is replaced without it)")
    parser.add_argument("--prefix", default="pred_", help="column name prefix (default pred_)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto", help="auto (a GPU per rank if any), cpu, "
                        "cuda, cuda:N")


def predictor_folder(model: str) -> Path:
    from galaxy_hpc.models.vote_predictor import MANIFEST

    folder = Path(resolve_weights(model, field="MODEL"))
    if not (folder / MANIFEST).is_file() and (folder / "predictor" / MANIFEST).is_file():
        return folder / "predictor"
    return folder


def default_out(store_path: Path) -> Path:
    return store_path.parent / f"{store_path.name.rsplit('.', 1)[0]}.predictions.fits"


def _device(choice: str, local_rank: int):
    import torch

    if choice != "auto":
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from galaxy_hpc.data.gz2 import ANSWERS, column_name
    from galaxy_hpc.models.store_predictions import predict_store
    from galaxy_hpc.models.vote_predictor import load_vote_predictor
    from hpc.comm import job_comm
    from hpc.dist import resolve_env
    from hpc.files import check_writable
    from hpc.mpi import split_range
    from hpc.store import open_store

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    store = open_store(args.store)
    out = Path(args.out) if args.out else default_out(store.path)
    if not out.name.lower().endswith(TABLE_ENDINGS):
        raise ValueError(f"--out {out}: write a {' or '.join(TABLE_ENDINGS)} table")
    if out.exists() and not args.overwrite and not is_predictions_table(out, args.prefix):
        raise ValueError(f"--out {out} exists and is not a predictions table this command "
                         "wrote (a catalog it would replace, not add columns to); choose "
                         "another --out, or give --overwrite to replace it")
    check_writable(out, "the predictions table")  # before the model loads, not after the work
    env = resolve_env(cuda_available=False)
    comm = job_comm(env) if env.world_size > 1 else None
    started = time.perf_counter()
    folder = predictor_folder(args.model)
    predictor = load_vote_predictor(folder, device=_device(args.device, env.local_rank))
    columns = list(getattr(predictor, "answer_columns", None)
                   or [column_name(a) for a in ANSWERS])
    shards = split_range(store.num_shards, env.rank, env.world_size)
    start = store.shard_bounds(shards.start)[0] if len(shards) else 0
    stop = store.shard_bounds(shards.stop - 1)[1] if len(shards) else 0
    loaded = time.perf_counter()
    with tqdm(total=stop - start, desc="predict", unit="galaxy", dynamic_ncols=True,
              disable=not env.is_main or args.json) as bar:
        fractions = predict_store(predictor, store, start=start, stop=stop,
                                  batch_size=args.batch_size, progress=bar.update)
    predicting = time.perf_counter() - loaded
    parts = comm.allgather((start, fractions)) if comm else [(start, fractions)]
    if env.is_main:
        values = np.concatenate([f for _, f in sorted(parts, key=lambda p: p[0])])
        assert len(values) == len(store), (len(values), len(store))
        write_table(out, store, values, [args.prefix + c for c in columns],
                    model=folder, prefix=args.prefix)
        seconds = time.perf_counter() - started
        summary = {"out": str(out), "model": str(folder), "store": str(store.path),
                   "store_checksum": store.checksum, "num_items": len(store),
                   "num_columns": len(columns), "prefix": args.prefix,
                   "num_ranks": env.world_size, "seconds": seconds,
                   # rank 0's rate over its share, model loading left out
                   "items_per_s_per_rank": (stop - start) / predicting if predicting > 0
                   else None}
        print_result(args, None, data=summary, text=f"predicted {len(columns)} vote fractions "
                     f"for {len(store)} galaxies in {seconds:.1f} s on {env.world_size} "
                     f"rank(s): {out}")
    return 0


def is_predictions_table(path: Path, prefix: str) -> bool:
    """Whether `path` is what an earlier `predict` wrote (so a rerun may replace it): a
    FITS file whose first table is EXTNAME PREDICTIONS from galaxy-hpc, or a CSV whose
    header is `index`, maybe `id`, then only `prefix`ed columns."""
    if path.name.lower().endswith(".fits"):
        from astropy.io import fits

        try:
            with fits.open(path) as hdus:
                header = hdus[1].header if len(hdus) > 1 else {}
                return (header.get("EXTNAME") == "PREDICTIONS"
                        and str(header.get("ORIGIN", "")).startswith("galaxy-hpc"))
        except (OSError, ValueError):
            return False
    try:
        with open(path, encoding="utf-8") as file:
            names = file.readline().strip().split(",")
    except (OSError, UnicodeDecodeError):
        return False
    rest = names[2:] if names[1:2] == ["id"] else names[1:]
    return names[:1] == ["index"] and bool(rest) and all(n.startswith(prefix) for n in rest)


def write_table(out: Path, store, values, names: list[str], *, model: Path, prefix: str) -> None:
    """The table, written aside and renamed into place (a reader never sees half of it).
    FITS gets units and descriptions (TUNITn/TCOMMn) and a comment on every card; CSV
    holds only the values."""
    import numpy as np
    from astropy.table import Table

    from galaxy_hpc.data.columns import ColumnInfo, column_info, predicted_info
    from galaxy_hpc.data.fits_header import write_fits_table

    table = Table()
    infos = {"index": ColumnInfo(None, "store index of the galaxy (join on it)")}
    table["index"] = np.arange(len(store), dtype=np.int64)
    if store.spec.columns.get("id") == "str":
        table["id"] = np.array([str(v) for v in store.read_column("id")])
        stored = store.column_info("id")
        infos["id"] = ColumnInfo(None, stored.get("description") or column_info("id").description)
    for j, name in enumerate(names):
        table[name] = values[:, j].astype(np.float32)
        infos[name] = predicted_info(name[len(prefix):])
    import galaxy_hpc

    cards = {"ORIGIN": (f"galaxy-hpc {galaxy_hpc.__version__}", "software that wrote this file"),
             "MODEL": (str(Path(model).resolve()), "vote predictor folder"),
             "STORE": (str(store.path), "store whose galaxies were predicted"),
             "STORECHK": (store.checksum, "content checksum of that store"),
             "PREFIX": (prefix, "prefix of the predicted columns' names")}
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.name.lower().endswith(".fits"):
        write_fits_table(out, table, infos, cards, extname="PREDICTIONS")
        return
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        table.write(partial, format="ascii.csv", overwrite=True)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
