"""Where a run's scalars and sample grids go besides train_log.jsonl and samples/*.png:
TensorBoard and Weights & Biases (run.loggers). Only rank 0 opens trackers.

TensorBoard writes OUTPUT/tensorboard; a resumed run purges the events past its
checkpoint, as train_log.jsonl drops those rows (metrics.RunLog).

W&B: compute nodes usually have no network, so the run is written offline under
OUTPUT/wandb/offline-run-* unless WANDB_MODE or run.wandb.mode says otherwise, and
closing prints the `wandb sync` command that uploads it from a node with network. The
W&B run id is kept in OUTPUT/wandb/run-id, so a run resumed after preemption logs into
the same W&B run (each resumed segment is a new offline folder; `wandb sync` uploads
them into that one run). W&B cannot purge: rows a killed run logged past its last
checkpoint stay in its own segment, and W&B keeps the first value of a repeated step.
Its console capture is turned off: it would wrap the stdout that `--json` redirects.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Protocol

import numpy as np

RUN_ID_FILE = "run-id"


class Tracker(Protocol):
    def scalars(self, step: int, values: dict[str, float]) -> None: ...

    def image(self, step: int, tag: str, image: np.ndarray, caption: str) -> None: ...

    def close(self) -> str | None:
        """Finish writing; a line for the user (where the logs are, what to run), or None."""


def numeric(values: dict[str, Any]) -> dict[str, float]:
    """The values a tracker can plot: numbers, not booleans or strings."""
    return {k: v for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class TensorBoardTracker:
    def __init__(self, output_dir: Path, *, first_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(output_dir / "tensorboard"), purge_step=first_step)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self._writer.add_scalar(key, value, step)
        self._writer.flush()

    def image(self, step: int, tag: str, image: np.ndarray, caption: str) -> None:
        self._writer.add_image(tag, image, step, dataformats="HWC")
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class WandbTracker:
    def __init__(self, output_dir: Path, section: Any, *, config: dict[str, Any]) -> None:
        import wandb

        folder = output_dir / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / RUN_ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:8]
        id_file.write_text(run_id + "\n")
        self.mode = os.environ.get("WANDB_MODE") or section.mode
        self._wandb = wandb
        self._run = wandb.init(
            project=section.project, entity=section.entity,
            name=section.name or output_dir.resolve().name, tags=list(section.tags),
            config=config, dir=str(output_dir), id=run_id, resume="allow", mode=self.mode,
            settings=wandb.Settings(console="off", quiet=True))

    @property
    def run_folder(self) -> Path | None:
        """This segment's folder (offline-run-* or run-*); None when disabled."""
        return None if self.mode == "disabled" else Path(self._run.settings.sync_dir)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._run.log(values, step=step)

    def image(self, step: int, tag: str, image: np.ndarray, caption: str) -> None:
        self._run.log({tag: self._wandb.Image(image, caption=caption)}, step=step)

    def close(self) -> str | None:
        folder = self.run_folder
        self._run.finish()
        if self.mode != "offline" or folder is None:
            return None
        segments = sorted(folder.parent.glob("offline-run-*"))
        target = folder if len(segments) <= 1 else folder.parent / "offline-run-*"
        return (f"W&B run saved offline in {folder}; upload it from a node with network: "
                f"wandb sync {target}")


def open_trackers(loggers: list[str], output_dir: str | Path, *, first_step: int,
                  wandb_section: Any = None, config: dict[str, Any] | None = None
                  ) -> list[Tracker]:
    """The trackers `loggers` names (tensorboard, wandb), in that order."""
    from galaxy_hpc.train.config import WandbSection

    out = Path(output_dir)
    wandb_section = wandb_section if wandb_section is not None else WandbSection()
    trackers: list[Tracker] = []
    for name in loggers:
        if name == "tensorboard":
            trackers.append(TensorBoardTracker(out, first_step=first_step))
        elif name == "wandb":
            trackers.append(WandbTracker(out, wandb_section, config=config or {}))
        else:
            raise ValueError(f"run.loggers: unknown logger {name!r}")
    return trackers
