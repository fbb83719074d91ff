"""`galaxy-hpc select STORE --where EXPR --out NEW`: the rows where a condition on the
columns holds, as a new store (galaxy_hpc.curate.select)."""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.batch import add_batch_command, load_batch_config, print_result


def register(subparsers: argparse._SubParsersAction) -> None:
    from galaxy_hpc.curate.config import SelectConfig

    add_batch_command(
        subparsers, "select", run=run, config="select YAML (kind: select)", required=False,
        stores=("store",), fields=SelectConfig,
        help="the rows of a store where a condition on its columns holds, as a new store",
        description=SelectConfig.__doc__)


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.curate.config import SelectConfig
    from galaxy_hpc.curate.select import run_select

    result = run_select(load_batch_config(SelectConfig, args))
    print_result(args, result)
    return 0
