"""run.loggers: TensorBoard and W&B (offline, as on compute nodes without network) get
the scalars and the sample grids, read back from what each wrote."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.wandb_files import history, run_config
from PIL import Image

from galaxy_hpc.train.config import RunSection
from galaxy_hpc.train.metrics import RunLog


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")


def grid(path, seed):
    pixels = np.random.default_rng(seed).integers(0, 255, (16, 24, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def test_wandb_offline_run_holds_scalars_images_and_config(tmp_path, offline, capsys):
    log = RunLog(tmp_path, enabled=True, loggers=["tensorboard", "wandb"],
                 config={"run": {"seed": 7}, "kind": "train_toy"})
    for step in (1, 2, 3):
        log.write(step, {"loss": 1.0 / step, "lr": 1e-4, "flag": True, "note": "x"})
    pixels = grid(tmp_path / "step-3.png", 3)
    log.image(3, "samples", tmp_path / "step-3.png")
    lines = log.close()

    (segment,) = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert lines == [f"W&B run saved offline in {segment}; upload it from a node with "
                     f"network: wandb sync {segment}"]
    assert f"wandb sync {segment}" in capsys.readouterr().out
    (file,) = segment.glob("run-*.wandb")
    rows = history(file)
    assert [rows[s]["loss"] for s in (1, 2, 3)] == pytest.approx([1.0, 0.5, 1 / 3])
    assert "flag" not in rows[1] and "note" not in rows[1]  # only numbers are plotted
    assert rows[3]["samples/_type"] == "image-file" and rows[3]["samples/width"] == 24
    saved = segment / "files" / rows[3]["samples/path"]
    assert np.array_equal(np.asarray(Image.open(saved).convert("RGB")), pixels)
    assert run_config(file)["run"] == {"seed": 7}
    run_id = (tmp_path / "wandb" / "run-id").read_text().strip()
    assert file.name == f"run-{run_id}.wandb"
    assert any((tmp_path / "tensorboard").iterdir())  # TensorBoard too


def test_a_resumed_run_logs_into_the_same_wandb_run(tmp_path, offline):
    first = RunLog(tmp_path, enabled=True, loggers=["wandb"])
    first.write(1, {"loss": 2.0})
    first.close()
    again = RunLog(tmp_path, enabled=True, loggers=["wandb"], resume_step=1)
    again.write(2, {"loss": 1.0})
    (line,) = again.close()
    segments = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(segments) == 2 and {f.name for s in segments for f in s.glob("*.wandb")} == \
        {f"run-{(tmp_path / 'wandb' / 'run-id').read_text().strip()}.wandb"}
    assert line.endswith(f"wandb sync {tmp_path / 'wandb' / 'offline-run-*'}")
    assert history(next(segments[1].glob("*.wandb")))[2]["loss"] == 1.0


def test_other_ranks_and_empty_loggers_start_nothing(tmp_path, offline):
    RunLog(tmp_path / "r1", enabled=False, loggers=["wandb"]).write(1, {"loss": 1.0})
    quiet = RunLog(tmp_path / "r0", enabled=True, loggers=[])
    quiet.write(1, {"loss": 1.0})
    assert quiet.close() == []
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r0" / "wandb").exists()
    assert json.loads((tmp_path / "r0" / "train_log.jsonl").read_text())["loss"] == 1.0


def test_loggers_are_checked_by_name():
    with pytest.raises(ValueError, match="loggers: 'mlflow' is not a logger"):
        RunSection(loggers=["tensorboard", "mlflow"])
    with pytest.raises(ValueError, match="names one twice"):
        RunSection(loggers=["wandb", "wandb"])
