"""`galaxy-hpc generate CONFIG [a.b=v ...]`: a synthetic catalog, on one process, under
mpiexec or inside srun; `--object I --out F` regenerates one object of it alone.

Generates the catalog of CONFIG (kind: generate) on every rank of this launch (alone,
mpiexec -n K, srun): ranks take output shards from a shared queue. Every object depends
only on (seed, index), so the bytes do not depend on the number of ranks, and the same
command after a crash or kill finishes the catalog. Exit 75: preempted, run again. With
--object I --out F: regenerate object I alone (F.npy or F.fits) and check it against the
catalog.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

from galaxy_hpc.cli.batch import add_batch_command, print_result


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_batch_command(
        subparsers, "generate", run=run, config="generate YAML (kind: generate)",
        help="mass-produce a synthetic galaxy catalog (store + FITS table)", description=__doc__)
    parser.add_argument("--object", type=int, metavar="INDEX",
                        help="regenerate only this object (one process)")
    parser.add_argument("--out", metavar="FILE", help="with --object: .npy or .fits file")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete a catalog already at the config's out (only a store) and "
                        "its table, and start over (overwrite=true)")


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.jobs import load_job_config
    from hpc.dist import resolve_env
    from hpc.preempt import EXIT_REQUEUE

    overrides = list(args.overrides) + (["overwrite=true"] if args.overwrite else [])
    cfg = load_job_config("generate", args.config, overrides)
    env = resolve_env(cuda_available=False)
    if args.object is not None:
        return _one_object(cfg, args, env)
    if args.out is not None:
        raise ValueError("--out goes with --object; the catalog's path is the config's out "
                         "(override it with out=PATH)")
    from galaxy_hpc.generate.job import run_generate

    result = run_generate(cfg, progress=not args.json)
    print_result(args, result, data={**asdict(result), "ok": result.ok,
                                     "objects_per_s": result.objects_per_s})
    if result.preempted:
        return EXIT_REQUEUE
    return 0 if result.ok else 1


def _one_object(cfg, args: argparse.Namespace, env) -> int:
    from galaxy_hpc.generate.single import regenerate_object

    if env.world_size > 1:
        raise ValueError("--object regenerates one object on one process; run it without "
                         "mpiexec/srun")
    if args.out is None:
        raise ValueError("--object needs --out FILE (.npy or .fits)")
    from hpc.files import check_writable

    check_writable(args.out, "the object")
    result = regenerate_object(cfg, args.object, args.out)
    print_result(args, result)
    return 1 if result.matches_catalog is False else 0
