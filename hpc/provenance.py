"""The command a run records as its provenance: the one the user typed.

A job sent with `galaxy-hpc submit` (or by the demo) runs in a process that submitit
starts, `python -m submitit.core._submit FOLDER`: its sys.argv names submitit, and that
is what store attributes, the FITS PROVJSON header and the report used to record. So
the command is taken once, in the process the user started, and handed down in the
environment variable GHPC_COMMAND: processes started on its behalf (submitit tasks,
local or Slurm, which also get it from the job's pickled call) read it from there.
The outermost command wins, because it is the one the user typed; every record of
"the command" asks `command_line()`.

The folder the command was typed in travels the same way (GHPC_WORKDIR): relative
paths in the command (`galaxy-hpc ingest . --out galaxies.zarr`) mean nothing without
it, and a submitted job's process may start elsewhere. Records take both at once from
`command_record()`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

COMMAND_ENV = "GHPC_COMMAND"
WORKDIR_ENV = "GHPC_WORKDIR"


def command_line() -> str:
    """The user's command: GHPC_COMMAND when a command started this work, else this
    process's own argv (program name without its folder)."""
    recorded = os.environ.get(COMMAND_ENV)
    if recorded:
        return recorded
    argv = sys.argv or [""]
    return shlex.join([Path(argv[0]).name, *argv[1:]])


def working_directory() -> str:
    """The folder the user's command ran in (where its relative paths point):
    GHPC_WORKDIR when a command started this work, else this process's own."""
    return os.environ.get(WORKDIR_ENV) or os.getcwd()


def command_record() -> dict[str, str]:
    """What a store, catalog or report records of how it was made: the command and the
    folder it was typed in."""
    return {"command": command_line(), "working_directory": working_directory()}


@contextlib.contextmanager
def recording_command(program: str, argv: Sequence[str]) -> Iterator[str]:
    """Within the block, `command_line()` is `program argv...`, unless a command that
    started this process already set it. Restored afterwards, so that a test calling
    the entry point twice in one process records each call's own command."""
    before = os.environ.get(COMMAND_ENV)
    if before:
        yield before
        return
    workdir_before = os.environ.get(WORKDIR_ENV)
    os.environ[COMMAND_ENV] = command = shlex.join([program, *argv])
    os.environ[WORKDIR_ENV] = os.getcwd()
    try:
        yield command
    finally:
        _restore(COMMAND_ENV, before)
        _restore(WORKDIR_ENV, workdir_before)


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def adopt_command(command: str | None, workdir: str | None = None) -> None:
    """In a job's own process: record the command (and its folder) captured when the job
    was submitted (the environment of a Slurm job may not carry the submitter's)."""
    if command:
        os.environ[COMMAND_ENV] = command
    if workdir:
        os.environ[WORKDIR_ENV] = workdir
