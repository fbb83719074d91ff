"""Helpers of the export checks: train through the CLI, compare an export with the EMA.

The checkers (tests/third_party/*.py) run with the venv's Python in their own process
and assert that they never imported galaxy_hpc.
"""

from __future__ import annotations

from pathlib import Path

from support.cli_runs import last_json
from support.cli_runs import train as run_train
from support.third_party import third_party

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "train"
# What test_bf16 trains each precision with (tests/train/conftest.py's fp32_run).
PRECISION_RUN = ("run.max_steps=12", "run.log_every=4", "data.caption_dropout=0")


def train(galaxy_hpc, config, store, out, *overrides, launcher=()):
    result = last_json(run_train(galaxy_hpc, CONFIGS / config, store, out, "data.num_workers=0",
                                 *overrides, launcher=launcher))
    assert result["ok"], result
    return result


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
