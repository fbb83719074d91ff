"""`galaxy-hpc evaluate EVALUATION ...`: judge a generated catalog against real galaxies.

Each evaluation is its own module in galaxy_hpc/cli/evaluations/ exposing
`register(actions)`, which adds its sub-subcommand; EVALUATIONS lists them in the order
`--help` shows them. Adding one (e.g. `evaluate augmentation`) is a new module there and
one line here. Every evaluation runs alone, under mpiexec or under srun, prints on rank 0,
has --json, and with --out RUN_DIR writes RUN_DIR/<evaluation>.json for `galaxy-hpc report`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

# Module names under galaxy_hpc.cli.evaluations.
EVALUATIONS: list[str] = [
    "fid",
    "physics",
    "morphology",
    "conditioning",
    "augmentation",
    "all",
]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="FID/KID/IS, physics, morphology and conditioning checks of a catalog",
        description="Evaluate a generated store against a real one, on any number of ranks "
        "(mpiexec, srun). Each evaluation prints on rank 0, has --json, and with --out RUN_DIR "
        "writes RUN_DIR/<evaluation>.json; `galaxy-hpc report RUN_DIR` makes the HTML page.")
    actions = parser.add_subparsers(dest="evaluation", metavar="EVALUATION", required=True)
    for name in EVALUATIONS:
        importlib.import_module(f"galaxy_hpc.cli.evaluations.{name}").register(actions)
        command = actions.choices[name]
        command.set_defaults(func=_checking_out(command.get_default("func")))


def _checking_out(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """`run`, after checking that --out RUN_DIR can be written: results are written at the
    end, so an unwritable folder must stop the evaluation before its work, not after."""

    def checked(args: argparse.Namespace) -> int:
        from hpc.files import check_writable

        if getattr(args, "out", None):
            check_writable(args.out, "the results folder (--out)")
        return run(args)

    return checked
