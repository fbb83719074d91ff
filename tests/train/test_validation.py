"""Validation bookkeeping, pure: the best loss and its step, early stopping's patience,
the state a checkpoint carries across a resume, the log row; and the best checkpoint
that pruning spares."""

from __future__ import annotations

import math

import pytest

from galaxy_hpc.data.split import Split
import numpy as np

from galaxy_hpc.train.validation import (
    BestTracker,
    as_row,
    batch_seed,
    in_store_order,
    measure_rank,
    validation_items,
    whole_set_totals,
)
from hpc.checkpoint import (
    best_checkpoint,
    checkpoint_dir,
    list_checkpoints,
    mark_best,
    mark_complete,
    prune,
)


def test_best_is_the_lowest_loss_and_min_delta_decides_improvement():
    tracker = BestTracker(min_delta=0.05)
    assert tracker.update(10, 1.0) and tracker.best_step == 10
    assert not tracker.update(20, 0.97)  # lower, but by less than min_delta
    assert tracker.best_loss == 1.0 and tracker.num_worse == 1
    assert tracker.update(30, 0.90) and (tracker.best_step, tracker.num_worse) == (30, 0)
    assert not tracker.update(40, math.nan)  # a NaN never becomes the best
    assert not tracker.update(50, math.inf) and tracker.best_loss == 0.90


def test_early_stopping_after_patience_validations_without_improvement():
    tracker = BestTracker(patience=2)
    losses = [1.0, 0.8, 0.85, 0.7, 0.75, 0.72, 0.6]
    stopped_at = None
    for step, loss in enumerate(losses, start=1):
        tracker.update(step * 100, loss)
        if tracker.should_stop:
            stopped_at = step * 100
            break
    assert stopped_at == 600 and tracker.best_step == 400  # 0.75 and 0.72 did not beat 0.7
    assert not BestTracker(patience=0, best_loss=1.0, num_worse=99).should_stop  # 0: never


def test_state_survives_a_resume_but_settings_are_the_new_runs():
    before = BestTracker(patience=3, min_delta=0.1)
    for step, loss in ((100, 2.0), (200, 1.5), (300, 1.6)):
        before.update(step, loss)
    after = BestTracker(patience=5, min_delta=0.0)
    after.load_state_dict(before.state_dict())
    assert (after.best_loss, after.best_step, after.num_worse) == (1.5, 200, 1)
    assert (after.patience, after.min_delta) == (5, 0.0)
    assert after.update(400, 1.49)  # the resumed run continues the same comparison


def test_log_row_averages_over_all_items():
    tracker = BestTracker()
    tracker.update(20, 0.5)
    row = as_row({"items": 10.0, "loss": 5.0, "mae": 2.0}, tracker)
    assert row == {"val_loss": 0.5, "val_mae": 0.2, "val_items": 10, "best_val_loss": 0.5,
                   "best_val_step": 20}


class _LargestSquare:
    """A family whose score is no mean over batches: the largest measured value, and the
    items' order (for the test to see it)."""

    def prepare_batch(self, raw):
        return raw

    def validation_measure(self, module, batch):
        values = np.asarray(batch["index"], dtype=np.float64)
        return {"value": values ** 2, "pair": np.stack([values, -values], axis=1)}

    def validation_score(self, measured):
        return float(measured["value"].max()), {"first": float(measured["pair"][0, 0])}


class _Batches:
    def __init__(self, *batches):
        self._batches = batches

    def batches(self):
        return ({"index": np.asarray(b)} for b in self._batches)


def test_whole_set_validation_gathers_items_in_store_order_whatever_the_ranks():
    family = _LargestSquare()
    one = [measure_rank(family, None, _Batches([1, 4], [6, 9]), seed=0)]
    two = [measure_rank(family, None, _Batches([4, 9]), seed=0),
           measure_rank(family, None, _Batches([1], [6]), seed=0)]
    for per_rank in (one, two):
        measured = in_store_order(per_rank)
        assert measured["value"].tolist() == [1, 16, 36, 81]
        assert measured["pair"].tolist() == [[1, -1], [4, -4], [6, -6], [9, -9]]
        totals = whole_set_totals(family, measured, 4)
        assert as_row(totals, BestTracker())["val_loss"] == 81.0
        assert as_row(totals, BestTracker())["val_first"] == 1.0


def test_a_measurement_not_per_item_is_refused():
    class Pooled(_LargestSquare):
        def validation_measure(self, module, batch):
            return {"value": np.zeros(1)}

    with pytest.raises(ValueError, match="'value' has shape"):
        measure_rank(Pooled(), None, _Batches([1, 2, 3]), seed=0)


def test_validation_items_and_seeds_are_fixed():
    split = Split.of(1000, fraction=0.1, seed=0)
    items = validation_items(split, 20, world_size=2)
    assert items.tolist() == split.heldout[:20].tolist()
    assert len(validation_items(split, None, world_size=2)) == len(split.heldout)
    with pytest.raises(ValueError, match="data.validation_fraction"):
        validation_items(Split.of(10, fraction=0.05, seed=0), None, world_size=64)
    assert batch_seed(0, 17) == batch_seed(0, 17) != batch_seed(0, 18) != batch_seed(1, 17)


def test_pruning_spares_the_best_checkpoint(tmp_path):
    for step in (10, 20, 30, 40):
        path = checkpoint_dir(tmp_path, step)
        path.mkdir()
        mark_complete(path, step)
        if step == 20:
            mark_best(tmp_path, 20, val_loss=0.25)
        prune(tmp_path, 2)
    assert [c.step for c in list_checkpoints(tmp_path)] == [20, 30, 40]
    assert best_checkpoint(tmp_path).step == 20
    mark_best(tmp_path, 40, val_loss=0.2)  # a new best: the old one may go
    prune(tmp_path, 2)
    assert [c.step for c in list_checkpoints(tmp_path)] == [30, 40]
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        mark_best(tmp_path, 50)
    (checkpoint_dir(tmp_path, 40) / "COMPLETE").unlink()
    assert best_checkpoint(tmp_path) is None  # a pointer to a broken save names nothing


def test_a_run_stopped_early_is_complete_on_rerun(tmp_path):
    import json
    from types import SimpleNamespace

    from galaxy_hpc.train.run_dir import RESULT_FILE, completed_result

    path = checkpoint_dir(tmp_path / "checkpoints", 40)
    path.mkdir(parents=True)
    mark_complete(path, 40)
    cfg = SimpleNamespace(run=SimpleNamespace(resume_from_checkpoint="latest", max_steps=100))
    result = {"ok": True, "output_dir": str(tmp_path), "step": 40, "max_steps": 100,
              "preempted": False, "artifact": None, "loss": 0.1, "images_per_s": None,
              "resumed_from": None, "validation": {"best_step": 20, "stopped_early": False}}
    (tmp_path / RESULT_FILE).write_text(json.dumps(result))
    assert completed_result(cfg, tmp_path) is None  # 40 of 100 steps: training goes on
    result["validation"]["stopped_early"] = True
    (tmp_path / RESULT_FILE).write_text(json.dumps(result))
    done = completed_result(cfg, tmp_path)
    assert done.already_complete and done.validation["best_step"] == 20


def test_exporting_the_best_weights_needs_validations_that_keep_them():
    from galaxy_hpc.train.config import RunSection

    assert RunSection(eval_every=5, export_weights="best").export_weights == "best"
    with pytest.raises(ValueError, match="run.export_weights=best needs validations"):
        RunSection(export_weights="best")
    with pytest.raises(ValueError, match="run.export_weights=best needs validations"):
        RunSection(eval_every=5, keep_best=False, export_weights="best")
    with pytest.raises(ValueError, match="must be last or best, got 'first'"):
        RunSection(export_weights="first")
