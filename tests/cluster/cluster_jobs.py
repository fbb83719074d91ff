"""Callables the Slurm tests submit with submitit (imported by the job via PYTHONPATH)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hpc.launch import Resubmittable


def square_with_rank(x: int) -> tuple[int, str]:
    return x * x, os.environ.get("SLURM_PROCID", "?")


class CountTo(Resubmittable):
    """Counts to `target`, one step per `step_s`; its progress lives in its attributes.

    When preempted, submitit pickles the instance as it is (via checkpoint())
    and requeues it, so a resumed run continues from `done` instead of zero.
    Every step is logged to `log_path` so the test can see where each run started.
    """

    def __init__(self, target: int, log_path: str, step_s: float = 0.5) -> None:
        self.target = target
        self.log_path = log_path
        self.step_s = step_s
        self.done = 0
        self.checkpoints = 0

    def __call__(self) -> dict:
        start = self.done
        while self.done < self.target:
            time.sleep(self.step_s)
            self.done += 1
            with open(self.log_path, "a") as log:
                log.write(json.dumps({"pid": os.getpid(), "done": self.done, "run_start": start,
                                      "job": os.environ.get("SLURM_JOB_ID")}) + "\n")
        return {"done": self.done, "checkpoints": self.checkpoints}

    def checkpoint(self, *args, **kwargs):
        self.checkpoints += 1
        Path(self.log_path).with_suffix(".checkpoint").write_text(str(self.done))
        return super().checkpoint(*args, **kwargs)
