"""benchmarks/gpu_check.sh --dry-run: the one-shot GPU check runs end to end on CPU, so the
script is known to work when a GPU is lent (rarely, for one call)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PARTS = ("bench_train", "bench_generate", "bench_fid", "bench_data")


@pytest.mark.slow
def test_dry_run_prints_every_row_with_a_figure_or_a_reason(tmp_path):
    # --cap-scale 3: the caps are what an idle 2-core machine needs; this test checks the
    # rows, not the speed, and CI machines share their cores (a part over its cap is a row
    # that says "timed out", which fails the asserts below).
    done = subprocess.run([str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run",
                           "--cap-scale", "3", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    env = report["environment"]
    assert env["dry_run"] and env["device"] and env["torch"] and env["date"]
    rows = report["rows"]
    assert len(rows) == 6  # train 2 sizes, generate 1-prompt and batched, fid, data
    for part in PARTS:
        assert any(r["part"].startswith(part) for r in rows), part
    for r in rows:
        # A figure beside its baseline, or an explicit reason (FAILED ..., no CUDA for nvJPEG).
        assert (r["ours"] is not None and r["baseline"] is not None) or r["failed"] or r["note"], r
    # Every part but bench_data (its nvJPEG decode needs CUDA) gives figures on CPU.
    for r in rows:
        if not r["part"].startswith("bench_data"):
            assert not r["failed"] and r["ratio"] > 0, r
    generate = [r for r in rows if r["part"].startswith("bench_generate")]
    assert {r["baseline_name"].split(",")[1].strip() for r in generate} == {"1 prompt/call",
                                                                            "2 prompts/call"}
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert markdown in done.stdout
    assert markdown.count("\n| bench_") == len(rows)
    assert all((tmp_path / f"{name}.log").exists()
               for name in ("train-256", "train-512", "generate", "fid"))


def test_parts_out_of_time_are_rows_with_the_reason(tmp_path):
    """A spent --budget skips the parts; each still has its row, saying FAILED and why."""
    done = subprocess.run([str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run", "--budget",
                           "1", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "gpu_check.json").read_text())["rows"]
    assert len(rows) == 6
    for r in rows[:5]:
        assert r["ours"] is None and r["failed"].startswith("skipped: the run's --budget"), r
        assert f"FAILED: {r['failed']}" in done.stdout
    assert rows[5]["part"].startswith("bench_data") and (rows[5]["failed"] or rows[5]["note"])
