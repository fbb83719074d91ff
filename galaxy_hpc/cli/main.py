"""Entry point of the `galaxy-hpc` command.

Each subcommand lives in its own module of this package and exposes
`register(subparsers)`, which adds its parser and sets `func` to a callable
`run(args) -> int`. A subcommand is listed in COMMANDS only once it works.

Exit status: 0 clean; 1 an error (one line on stderr); 2 bad usage (argparse);
3 a batch finished but set inputs aside (rejects); 75 stopped for preemption with
its progress saved (run the same command again).

Jobs take `KEY=VALUE` overrides anywhere after the subcommand (`train CFG --json
a.b=1`): argparse alone stops filling a positional list at the first flag, so
the tokens it leaves over that look like overrides are gathered here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from galaxy_hpc import __version__
from hpc.allocator import keep_freed_memory
from hpc.provenance import recording_command

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_REJECTS = 3
EXIT_REQUEUE = 75  # hpc.preempt.EXIT_REQUEUE, not imported: it would load the signal machinery

# `a.b=value`: a dotted key of identifier-like parts, then "=" (a path like runs/lr=1 is not).
OVERRIDE = re.compile(r"^[A-Za-z_][\w-]*(\.[A-Za-z_0-9][\w-]*)*=")
# The positional that holds a job's config (ingest's SOURCE; `evaluate fid`'s config and
# stores, nargs="*"), by command.
_CONFIG_SLOTS = ("config", "file")

# Module names under galaxy_hpc.cli, in the order `--help` lists them.
COMMANDS: list[str] = [
    "config_cmd",
    "env_cmd",
    "selftest_cmd",
    "submit_cmd",
    "sbatch_cmd",
    "caption_cmd",
    "store_cmd",
    "synth_cmd",
    "ingest_cmd",
    "manifest_cmd",
    "encode_cmd",
    "dedup_cmd",
    "select_cmd",
    "train_cmd",
    "predict_cmd",
    "generate_cmd",
    "sample_cmd",
    "serve_cmd",
    "evaluate_cmd",
    "report_cmd",
    "demo_cmd",
]


def _hint(error: Exception) -> str:
    """What to do next, where the error alone does not say (hpc/ knows no `ingest`)."""
    from hpc.store import NotAStore

    if isinstance(error, NotAStore):
        from galaxy_hpc.cli.store_hint import not_a_store_hint

        return not_a_store_hint(error.path, error.what)
    return ""


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
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_ERROR
    _gather_overrides(parser, args, rest)
    rank_log = _redirect_rank_output() if getattr(args, "distributed", False) else None
    raised = True  # cleared when the command returns its own status (all ranks agree on it)
    reason = ""  # the one-line error, for the terminal when this rank's output is in a log
    try:
        if getattr(args, "json", False):
            from galaxy_hpc.cli.output import json_mode

            with json_mode():
                status = int(args.func(args) or 0)
        else:
            status = int(args.func(args) or 0)
        raised = False
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        # User mistakes: one line that says what to change, no traceback.
        print(f"galaxy-hpc {args.command}: error: {error}{_hint(error)}", file=sys.stderr)
        reason = f": {error}"
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
    if status == EXIT_REQUEUE and getattr(args, "distributed", False):
        _report_preempted_rank(args.command)
    elif rank_log is not None and status not in (EXIT_OK, EXIT_REJECTS):
        from hpc.logs import tell_terminal

        tell_terminal(f"galaxy-hpc {args.command}: failed on this rank{reason}; see {rank_log}")
    if raised and status != EXIT_OK:
        _leave_the_world(status)
    return status


def _leave_the_world(status: int) -> None:
    """An error raised on some ranks only (a damaged shard that one rank read) leaves the
    others waiting in a collective, and MPI_Finalize then waits for them: the job hangs.
    A rank that raised in a world of several ends its process here, so that the launcher
    (mpiexec, srun, torchrun) ends the job, as generate's workers do."""
    from hpc.dist import resolve_env

    if resolve_env(cuda_available=False).world_size > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _gather_overrides(parser: argparse.ArgumentParser, args: argparse.Namespace,
                      rest: list[str]) -> None:
    """Put every KEY=VALUE of a job command into `args.overrides`, and its config path
    (given after flags, or after an override) into the config positional. Anything else
    left over is an error, as argparse would have said."""
    command = _command_parser(parser, args)
    if not hasattr(args, "overrides"):
        if rest:
            command.error(f"unrecognized arguments: {' '.join(rest)}")
        return
    slot = next((a for a in command._actions if a.dest in _CONFIG_SLOTS), None)
    given = getattr(args, slot.dest) if slot else None
    given = given if isinstance(given, list) else [given] if given is not None else []
    tokens = given + list(args.overrides) + list(rest)
    overrides = [t for t in tokens if OVERRIDE.match(t)]
    others = [t for t in tokens if not OVERRIDE.match(t)]
    many = slot is not None and slot.nargs == "*"  # CONFIG and stores (`evaluate fid`)
    room = len(others) if many else 1 if slot else 0
    flags = [t for t in others if t.startswith("-")]
    if flags or len(others) > room:
        command.error(f"unrecognized arguments: {' '.join(flags or others[room:])}")
    if slot:
        if not others and slot.nargs is None:  # required, and argparse filled it with an override
            command.error(f"the following arguments are required: {slot.metavar or slot.dest}")
        setattr(args, slot.dest, others if many else others[0] if others else None)
    args.overrides = overrides


def _command_parser(parser: argparse.ArgumentParser,
                    args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub-)subcommand that was run (`evaluate fid`), for its messages."""
    current = parser
    while True:
        actions = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, actions[0].dest, None) if actions else None
        if chosen not in (actions[0].choices if actions else {}):
            return current
        current = actions[0].choices[chosen]


def _report_preempted_rank(command: str) -> None:
    """Preemption is a normal stop, not a failure: every rank other than 0 (which printed
    the summary) says so in its own log, where one would look for a failure."""
    from hpc.dist import resolve_env

    env = resolve_env(cuda_available=False)
    if env.is_main:
        return
    print(f"galaxy-hpc {command}: stopped for preemption on rank {env.rank}/{env.world_size} "
          f"(exit {EXIT_REQUEUE}): its part of the checkpoint is saved; the same command "
          "resumes from it", file=sys.stderr, flush=True)


def _redirect_rank_output():
    """Jobs that run on every rank keep the terminal for rank 0 (see hpc.logs)."""
    from hpc.dist import resolve_env
    from hpc.logs import redirect_rank_output

    return redirect_rank_output(resolve_env(cuda_available=False))


if __name__ == "__main__":
    sys.exit(main())
