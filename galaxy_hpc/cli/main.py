"""Entry point of the `galaxy-hpc` command.

Each subcommand lives in its own module of this package and exposes
`register(subparsers)`, which adds its parser and sets `func` to a callable
`run(args) -> int`. A subcommand is listed in COMMANDS only once it works.

Exit status: 0 clean; 1 an error (one line on stderr); 2 bad usage (argparse);
3 a batch finished but set inputs aside (rejects).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from galaxy_hpc import __version__
from hpc.allocator import keep_freed_memory
from hpc.provenance import recording_command

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_REJECTS = 3

# Module names under galaxy_hpc.cli, in the order `--help` lists them.
COMMANDS: list[str] = [
    "config_cmd",
    "env_cmd",
    "selftest_cmd",
    "submit_cmd",
    "caption_cmd",
    "store_cmd",
    "synth_cmd",
    "ingest_cmd",
    "train_cmd",
    "predict_cmd",
    "generate_cmd",
    "evaluate_cmd",
    "report_cmd",
    "demo_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="galaxy-hpc",
        description="Train generative models of galaxies on HPC clusters and mass-produce "
        "synthetic galaxy catalogs.",
    )
    parser.add_argument("--version", action="version", version=f"galaxy-hpc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"galaxy_hpc.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Provenance (store attributes, FITS headers, jobs this one submits) records this.
    with recording_command("galaxy-hpc", argv):
        return _main(argv)


def _main(argv: list[str]) -> int:
    keep_freed_memory()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_ERROR
    rank_log = _redirect_rank_output() if getattr(args, "distributed", False) else None
    try:
        status = int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        # User mistakes: one line that says what to change, no traceback.
        print(f"galaxy-hpc {args.command}: error: {error}", file=sys.stderr)
        status = EXIT_ERROR
    except BrokenPipeError:
        # `galaxy-hpc ... | head`: the reader left; stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception:
        if rank_log is None:
            raise
        import traceback

        traceback.print_exc()
        status = EXIT_ERROR
    except KeyboardInterrupt:
        print(f"galaxy-hpc {args.command}: interrupted", file=sys.stderr)
        status = 130
    if rank_log is not None and status not in (EXIT_OK, EXIT_REJECTS):
        from hpc.logs import tell_terminal

        tell_terminal(f"galaxy-hpc {args.command}: failed on this rank; see {rank_log}")
    return status


def _redirect_rank_output():
    """Jobs that run on every rank keep the terminal for rank 0 (see hpc.logs)."""
    from hpc.dist import resolve_env
    from hpc.logs import redirect_rank_output

    return redirect_rank_output(resolve_env(cuda_available=False))


if __name__ == "__main__":
    sys.exit(main())
