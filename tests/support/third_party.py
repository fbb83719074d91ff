"""Run the third-party checkers (tests/third_party/*.py) with the venv's Python.

The checkers open artifacts with the tools their users open them with (diffusers, torch,
safetensors, zarr) and assert that they never imported galaxy_hpc; this module only
starts them, in their own process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

THIRD_PARTY = Path(__file__).resolve().parents[1] / "third_party"


def third_party(script: str, *args, timeout: float = 600) -> dict:
    """Run tests/third_party/`script`; its last stdout line is its JSON finding."""
    done = subprocess.run([sys.executable, str(THIRD_PARTY / script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def third_party_code(code: str, *args, timeout: float = 600) -> str:
    """Run `python -c code args...` (code that imports only third-party packages)."""
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()
