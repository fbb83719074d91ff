"""Shared fixtures: the installed command, mpiexec, and the local Slurm cluster.

Integration tests use real parts. The Slurm cluster is started here (by
tests/cluster/local_slurm.sh, which installs it if needed) on first use and
stopped by pid at the end of the session if this session started it. If it
cannot start, the tests that need it fail: nothing is skipped for want of a part.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found next to {sys.executable} nor on PATH: run `make install`")
    return found


@pytest.fixture(scope="session")
def galaxy_hpc() -> str:
    return _tool("galaxy-hpc")


@pytest.fixture(scope="session")
def mpiexec() -> str:
    return _tool("mpiexec")


@pytest.fixture(scope="session")
def local_slurm():
    """A running two-node Slurm cluster on this machine (with accounting)."""
    script = REPO / "tests" / "cluster" / "local_slurm.sh"
    run = subprocess.run([str(script), "start"], capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        pytest.fail(f"local Slurm did not start:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    started_here = run.stdout.strip().splitlines()[-1] == "started"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    yield env
    if started_here:
        subprocess.run([str(script), "stop"], capture_output=True, text=True, timeout=120)
