"""`galaxy-hpc selftest [CONFIG]`: check that every rank of this launch can talk to the others."""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.batch import add_batch_command, print_result


def register(subparsers: argparse._SubParsersAction) -> None:
    add_batch_command(
        subparsers, "selftest", run=run, required=False,
        config="selftest YAML (default: embedded defaults)",
        help="distributed check: all-reduce with torch.distributed and MPI",
        description="Run on every rank (srun, mpiexec, torchrun or alone). Rank 0 prints the "
        "world size, hosts and reduced values; exit 1 if any rank disagrees.")


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.jobs import load_job_config, run_job

    result = run_job("selftest", load_job_config("selftest", args.config, args.overrides))
    print_result(args, result)
    return 0 if result.ok else 1
