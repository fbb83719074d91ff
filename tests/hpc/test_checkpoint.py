"""hpc.checkpoint: only complete checkpoints are resumed from; pruning keeps the newest."""

from __future__ import annotations

import pytest

from hpc.checkpoint import (
    MARKER,
    checkpoint_dir,
    latest_checkpoint,
    list_checkpoints,
    mark_complete,
    prune,
    resolve_resume,
)


def make(root, step, complete=True):
    path = checkpoint_dir(root, step)
    path.mkdir(parents=True)
    (path / "model.pt").write_text("weights")
    if complete:
        mark_complete(path, step, world_size=2)
    return path


def test_incomplete_checkpoints_are_never_picked(tmp_path):
    make(tmp_path, 10)
    make(tmp_path, 20)
    make(tmp_path, 30, complete=False)  # the save a kill interrupted
    assert [c.step for c in list_checkpoints(tmp_path)] == [10, 20]
    assert latest_checkpoint(tmp_path).step == 20
    assert resolve_resume(tmp_path, "latest").info["world_size"] == 2
    with pytest.raises(ValueError, match="incomplete"):
        resolve_resume(tmp_path, str(checkpoint_dir(tmp_path, 30)))


def test_resolve_resume_cases(tmp_path):
    assert resolve_resume(tmp_path, None) is None
    assert resolve_resume(tmp_path, "latest") is None  # nothing yet: start fresh
    path = make(tmp_path, 5)
    assert resolve_resume(tmp_path, str(path)).step == 5
    with pytest.raises(FileNotFoundError, match="no such folder"):
        resolve_resume(tmp_path, str(tmp_path / "nope"))
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match="not a checkpoint-<step> folder"):
        resolve_resume(tmp_path, str(tmp_path / "other"))


def test_prune_keeps_newest_and_removes_dead_partials(tmp_path):
    for step in (10, 20, 30, 40):
        make(tmp_path, step)
    make(tmp_path, 35, complete=False)
    make(tmp_path, 50, complete=False)  # newer than every complete one: may still be being written
    removed = prune(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["checkpoint-00000010", "checkpoint-00000020",
                                               "checkpoint-00000035"]
    assert [c.step for c in list_checkpoints(tmp_path)] == [30, 40]
    assert checkpoint_dir(tmp_path, 50).is_dir()
    assert prune(tmp_path, keep=None) == []
    with pytest.raises(ValueError, match=">= 1"):
        prune(tmp_path, keep=0)


def test_marker_is_written_atomically(tmp_path):
    path = make(tmp_path, 7)
    assert (path / MARKER).is_file() and not list(path.glob(".COMPLETE.tmp*"))
