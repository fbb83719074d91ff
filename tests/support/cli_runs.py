"""Run `galaxy-hpc` (or any command) as users run it, and read its `--json` result.

Every run gets a torch.distributed port of its own (MASTER_PORT): a training run of
another test on the default port would hold this one's rendezvous up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.ports import free_port

GALAXY_HPC = str(Path(sys.executable).parent / "galaxy-hpc")


def quiet_env(**extra: str) -> dict[str, str]:
    """This environment with DeepSpeed on the CPU and one intra-op thread per process: on
    2 cores shared with other jobs, torch's default of one thread per core spins on busy
    cores (a tiny VAE step measured 4 s instead of 0.4 s); with one thread runs keep pace."""
    return {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1", **extra}


def run_command(cmd, *, cwd=None, env=None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`cmd` (any items, made strings) to completion, output captured; exit status unchecked."""
    env = {**(os.environ if env is None else env), "MASTER_PORT": str(free_port())}
    return subprocess.run([str(part) for part in cmd], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=cwd, env=env)


def assert_ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def last_json(done: subprocess.CompletedProcess) -> dict:
    """The `--json` result: the last line of stdout."""
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_json(cmd, *, cwd=None, env=None, timeout: float = 600) -> dict:
    """Run `cmd`, assert it exited 0, return its `--json` result."""
    return last_json(assert_ok(run_command(cmd, cwd=cwd, env=env, timeout=timeout)))


def train(galaxy_hpc, config, store, out, *overrides, launcher=(), env=None,
          timeout: float = 600) -> subprocess.CompletedProcess:
    """`galaxy-hpc train CONFIG` on `store` into `out` (run from out's parent), asserted to
    exit 0; the result is last_json(done), DeepSpeed's chatter is in done.stderr."""
    cmd = [*launcher, galaxy_hpc, "train", config, f"data.store={store}",
           f"run.output_dir={out}", *overrides, "--json"]
    return assert_ok(run_command(cmd, cwd=Path(out).parent, env=env, timeout=timeout))


def log_rows(out) -> list[dict]:
    """The rows of a run's train_log.jsonl."""
    return [json.loads(line) for line in (Path(out) / "train_log.jsonl").read_text().splitlines()]
