"""The command a run records as its provenance: the one the user typed.

A job sent with `galaxy-hpc submit` (or by the demo) runs in a process that submitit
starts, `python -m submitit.core._submit FOLDER`: its sys.argv names submitit, and that
is what store attributes, the FITS PROVJSON header and the report used to record. So
the command is taken once, in the process the user started, and handed down in the
environment variable GHPC_COMMAND: processes started on its behalf (submitit tasks,
local or Slurm, which also get it from the job's pickled call) read it from there.
The outermost command wins, because it is the one the user typed; every record of
"the command" asks `command_line()`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

COMMAND_ENV = "GHPC_COMMAND"


def command_line() -> str:
    """The user's command: GHPC_COMMAND when a command started this work, else this
    process's own argv (program name without its folder)."""
    recorded = os.environ.get(COMMAND_ENV)
    if recorded:
        return recorded
    argv = sys.argv or [""]
    return shlex.join([Path(argv[0]).name, *argv[1:]])


@contextlib.contextmanager
def recording_command(program: str, argv: Sequence[str]) -> Iterator[str]:
    """Within the block, `command_line()` is `program argv...`, unless a command that
    started this process already set it. Restored afterwards, so that a test calling
    the entry point twice in one process records each call's own command."""
    before = os.environ.get(COMMAND_ENV)
    if before:
        yield before
        return
    os.environ[COMMAND_ENV] = command = shlex.join([program, *argv])
    try:
        yield command
    finally:
        if before is None:
            os.environ.pop(COMMAND_ENV, None)
        else:
            os.environ[COMMAND_ENV] = before


def adopt_command(command: str | None) -> None:
    """In a job's own process: record the command captured when the job was submitted
    (the environment of a Slurm job may not carry the submitter's)."""
    if command:
        os.environ[COMMAND_ENV] = command
