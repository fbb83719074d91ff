"""Helpers of the export checks: train through the CLI, run a third-party checker.

The checkers (tests/third_party/*.py) run with the venv's Python in their own process
and assert that they never imported galaxy_hpc.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "train"
THIRD_PARTY = REPO / "tests" / "third_party"


def train(galaxy_hpc, config, store, out, *overrides, launcher=()):
    cmd = [*launcher, galaxy_hpc, "train", str(CONFIGS / config), f"data.store={store}",
           f"run.output_dir={out}", "data.num_workers=0", *overrides, "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=out.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"], result
    return result


def third_party(script, *args):
    """Run a checker with the venv's Python; it asserts it never imported galaxy_hpc."""
    done = subprocess.run([sys.executable, str(THIRD_PARTY / script), *map(str, args)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_export_is_ema(run, mapping, *extra):
    found = third_party("ema_matches_export.py", run, *extra,
                        *[f"{prefix}={run / file}" for prefix, file in mapping.items()])
    assert found["num_updates"] > 0
    for file, check in found["files"].items():
        assert check["tensors"] > 0, (file, found)
        assert check["max_diff_ema"] == 0.0, (file, check)
        # The live weights moved away from the average: the check can tell them apart
        # (ZeRO-3 checkpoints hold no whole live weights to compare with).
        assert check["max_diff_live"] is None or check["max_diff_live"] > 1e-6, (file, check)
