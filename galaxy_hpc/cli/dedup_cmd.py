"""`galaxy-hpc dedup [CONFIG] STORE --out CLEAN [--extractor NAME --weights PATH]
[--threshold T] [--mark]`: remove exact and near-duplicate galaxies (galaxy_hpc.curate)."""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.batch import add_batch_command, load_batch_config, print_result


def register(subparsers: argparse._SubParsersAction) -> None:
    from galaxy_hpc.curate.config import DedupConfig

    add_batch_command(
        subparsers, "dedup", run=run, config="dedup YAML (kind: dedup)", required=False,
        stores=("store",), fields=DedupConfig,
        help="remove exact and near-duplicate galaxies from a store (FAISS, any extractor)",
        description=DedupConfig.__doc__)


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.curate.config import DedupConfig
    from galaxy_hpc.curate.dedup import run_dedup

    cfg = load_batch_config(DedupConfig, args)
    result = run_dedup(cfg, show_progress=not args.json)
    print_result(args, result)
    return 0
