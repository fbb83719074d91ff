"""What every evaluation's command shares: output flags, and printing on rank 0 only."""

from __future__ import annotations

import argparse
from typing import Any

from galaxy_hpc.cli.output import print_json


def add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="RUN_DIR",
                        help="also write RUN_DIR/<evaluation>.json (what `galaxy-hpc report` reads)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}")


def str_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def emit(result: Any, args: argparse.Namespace, name: str) -> int:
    """Rank 0 prints the result (JSON or its summary) and writes it to --out."""
    from galaxy_hpc.evaluate.results import to_json, write_result
    from hpc.dist import resolve_env

    if not resolve_env(cuda_available=False).is_main:
        return 0
    data = result.to_dict()
    written = write_result(args.out, name, data) if args.out else None
    if args.json:
        print_json(to_json(data))
    else:
        print(result.summary() + (f"\nwrote {written}" if written else ""), flush=True)
    return 0
