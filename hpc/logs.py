"""Keep the terminal for rank 0: other ranks write to per-rank log files.

Under `srun -n 64` every rank's warnings and progress bars would interleave
in one output file. Ranks > 0 send their stdout/stderr (file descriptors, so
C libraries' messages too) to `rank-NNNNN.log` in GHPC_RANK_LOG_DIR (set by
the slurm/*.sbatch scripts to a folder per job) or ./logs/ranks. submitit already keeps
one log per task, so its jobs are left alone.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from hpc.dist import DistEnv
from hpc.provenance import command_line

_original_stderr_fd: int | None = None


def redirect_rank_output(env: DistEnv, log_dir: str | Path | None = None) -> Path | None:
    """Send this rank's output to its own file unless it is rank 0. Returns the file."""
    global _original_stderr_fd
    if env.rank == 0 or env.world_size == 1 or os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    folder = Path(log_dir or os.environ.get("GHPC_RANK_LOG_DIR") or "logs/ranks")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"rank-{env.rank:05d}.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    if _original_stderr_fd is None:
        _original_stderr_fd = os.dup(2)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    print(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} rank {env.rank}/{env.world_size} "
          f"on {env.hostname}, job {env.job_id or '-'}: {command_line()}", flush=True)
    return path


def tell_terminal(message: str) -> None:
    """One line to the terminal even after redirection (e.g. 'rank 3 failed: see ...')."""
    fd = _original_stderr_fd if _original_stderr_fd is not None else 2
    os.write(fd, (message.rstrip("\n") + "\n").encode())
