"""Checkpoint folders that are either complete or ignored, and their pruning.

A checkpoint is a folder `checkpoint-<step:08d>` under a run's checkpoint
root. Every rank writes its part into it (DeepSpeed shards optimizer state per
rank); after a barrier, rank 0 writes `COMPLETE` (a small JSON) last, with an
atomic rename. A folder without that marker is a save that was interrupted
(a node died, the job hit its limit mid-write) and is never resumed from.

`resume_from_checkpoint: latest` picks the newest complete folder;
`checkpoints_total_limit` keeps only the newest N complete ones, and never the one that
`best.json` (beside them, written by `mark_best`) names: the checkpoint a run judged
best (lowest validation loss) survives however long the run goes on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "COMPLETE"
BEST = "best.json"
_NAME = re.compile(r"^checkpoint-(\d{8,})$")


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path

    @property
    def info(self) -> dict[str, Any]:
        return json.loads((self.path / MARKER).read_text())


def checkpoint_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"checkpoint-{step:08d}"


def _step_of(path: Path) -> int | None:
    match = _NAME.match(path.name)
    return int(match.group(1)) if match else None


def list_checkpoints(root: str | Path, *, complete_only: bool = True) -> list[Checkpoint]:
    """Checkpoints under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        step = _step_of(path)
        if step is None or not path.is_dir():
            continue
        if complete_only and not (path / MARKER).is_file():
            continue
        found.append(Checkpoint(step, path))
    return sorted(found, key=lambda c: c.step)


def latest_checkpoint(root: str | Path) -> Checkpoint | None:
    complete = list_checkpoints(root)
    return complete[-1] if complete else None


def resolve_resume(root: str | Path, resume_from: str | None) -> Checkpoint | None:
    """What `resume_from_checkpoint` means: None/"" -> start fresh; "latest" -> newest
    complete checkpoint under root (or fresh if none); otherwise a checkpoint folder path,
    which must be complete."""
    if not resume_from:
        return None
    if resume_from == "latest":
        return latest_checkpoint(root)
    path = Path(resume_from)
    if not path.is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint: no such folder {path}")
    step = _step_of(path)
    if step is None:
        raise ValueError(f"resume_from_checkpoint: {path} is not a checkpoint-<step> folder")
    if not (path / MARKER).is_file():
        raise ValueError(f"resume_from_checkpoint: {path} is incomplete (no {MARKER} marker: "
                         "the save was interrupted); use 'latest' or an earlier checkpoint")
    return Checkpoint(step, path)


def _write_atomic(target: Path, payload: dict[str, Any]) -> None:
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(payload, indent=1, sort_keys=True))
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def mark_complete(path: str | Path, step: int, **info: Any) -> None:
    """Rank 0, after every rank has written its part: the checkpoint becomes resumable."""
    payload = {"step": step, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info}
    _write_atomic(Path(path) / MARKER, payload)


def mark_best(root: str | Path, step: int, **info: Any) -> Path:
    """Rank 0: name the complete checkpoint of `step` the best one (`info`: why, e.g. its
    validation loss), in <root>/best.json. Returns the checkpoint folder."""
    path = checkpoint_dir(root, step)
    if not (path / MARKER).is_file():
        raise ValueError(f"mark_best: {path} is not a complete checkpoint")
    _write_atomic(Path(root) / BEST, {"step": step, "checkpoint": path.name, **info})
    return path


def best_checkpoint(root: str | Path) -> Checkpoint | None:
    """The checkpoint best.json names, when it is there and complete."""
    try:
        step = int(json.loads((Path(root) / BEST).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    path = checkpoint_dir(root, step)
    return Checkpoint(step, path) if (path / MARKER).is_file() else None


def prune(root: str | Path, keep: int | None) -> list[Path]:
    """Delete all but the newest `keep` complete checkpoints (sparing the best one, see
    `mark_best`), and interrupted saves older than the newest complete one (they can never
    be resumed). Returns what was removed."""
    complete = list_checkpoints(root)
    removed: list[Path] = []
    if keep is not None and keep < 1:
        raise ValueError(f"checkpoints_total_limit must be >= 1, got {keep}")
    doomed = complete[:-keep] if keep is not None and len(complete) > keep else []
    best = best_checkpoint(root)
    doomed = [c for c in doomed if best is None or c.step != best.step]
    newest = complete[-1].step if complete else None
    if newest is not None:
        doomed += [c for c in list_checkpoints(root, complete_only=False)
                   if c.step < newest and not (c.path / MARKER).is_file()]
    for checkpoint in doomed:
        # Remove the marker first: a half-deleted folder must not look complete.
        (checkpoint.path / MARKER).unlink(missing_ok=True)
        shutil.rmtree(checkpoint.path, ignore_errors=True)
        removed.append(checkpoint.path)
    return removed
