"""`galaxy-hpc selftest [CONFIG]`: check that every rank of this launch can talk to the others."""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.output import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "selftest", help="distributed check: all-reduce with torch.distributed and MPI",
        description="Run on every rank (srun, mpiexec, torchrun or alone). Rank 0 prints the world "
        "size, hosts and reduced values; exit 1 if any rank disagrees.")
    parser.add_argument("config", nargs="?", help="selftest YAML (default: embedded defaults)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run, distributed=True)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from galaxy_hpc.jobs import load_job_config, run_job
    from hpc.dist import resolve_env

    config, overrides = args.config, list(args.overrides)
    if config and "=" in config:  # only overrides were given
        config, overrides = None, [config, *overrides]
    cfg = load_job_config("selftest", config, overrides)
    result = run_job("selftest", cfg)
    if resolve_env().is_main:
        if args.json:
            print_json(asdict(result))
        else:
            print(result.summary(), flush=True)
    return 0 if result.ok else 1
