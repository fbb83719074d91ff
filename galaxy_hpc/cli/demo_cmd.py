"""`galaxy-hpc demo`: run the pipeline end to end on this machine with embedded defaults."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on this machine (synthetic data, tiny models)",
        description="End-to-end demo on embedded defaults: nothing to download or configure.")
    parser.add_argument("--out", type=Path, default=Path("demo_output"),
                        help="output folder (default: ./demo_output)")
    parser.add_argument("--tasks", type=int, default=2, help="local processes (default: 2)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.demo import run_demo

    if args.tasks < 1:
        raise ValueError(f"--tasks must be >= 1, got {args.tasks}")
    try:
        run_demo(args.out, num_tasks=args.tasks)
    except RuntimeError as error:
        print(f"galaxy-hpc demo: {error}")
        return 1
    return 0
