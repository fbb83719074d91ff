"""What a training run reports: a JSONL log, TensorBoard and W&B, images/s and MFU.

Rank 0 writes; every rank contributes to the averaged loss. MFU (model FLOP
utilisation) is the achieved training FLOP/s over the device's peak dense
FLOP/s for the precision in use, with FLOP counted per image by the model
family (one forward and backward pass, counted with torch's FlopCounterMode).
It is reported on GPUs only: a CPU has no meaningful peak to divide by.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

# Peak dense tensor-core FLOP/s by device name fragment and precision (vendor data
# sheets; H100 SXM, A100 SXM/PCIe 40/80 GB). FLOP, not MAC.
PEAK_FLOPS = {
    "H200": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},
    "H100": {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12},
    "A100": {"bf16": 312e12, "fp16": 312e12, "fp32": 19.5e12},
}


def peak_flops(device_name: str | None, precision: str) -> float | None:
    if not device_name:
        return None
    for fragment, peaks in PEAK_FLOPS.items():
        if fragment in device_name:
            return peaks.get(precision)
    return None


class RunLog:
    """train_log.jsonl (one JSON object per logged step) and the trackers run.loggers
    names (TensorBoard, W&B: galaxy_hpc.train.trackers), on rank 0 only.

    `resume_step` is the step the run starts from (0: fresh). Rows past it were written by
    a run that went on after its last checkpoint (killed, not preempted) and are dropped,
    so that the continued run's rows follow without duplicates; `drop_row_at_resume`
    drops the resume step's own row too, when it averaged a partial window (the end of a
    shorter run: the continued run logs that window in full). TensorBoard drops the same
    events (purge_step)."""

    def __init__(self, output_dir: str | Path, *, enabled: bool,
                 loggers: list[str] | tuple[str, ...] = ("tensorboard",), wandb: Any = None,
                 config: dict[str, Any] | None = None, resume_step: int = 0,
                 drop_row_at_resume: bool = False) -> None:
        from galaxy_hpc.train.trackers import open_trackers

        self.enabled = enabled
        self.path = Path(output_dir) / "train_log.jsonl"
        self.trackers: list[Any] = []
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            last_kept = resume_step - 1 if drop_row_at_resume else resume_step
            self._keep_rows_until(last_kept)
            self.trackers = open_trackers(list(loggers), output_dir, first_step=last_kept + 1,
                                          wandb_section=wandb, config=config)

    def _keep_rows_until(self, step: int) -> None:
        if not self.path.is_file():
            return
        lines = self.path.read_text().splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
        if len(kept) == len(lines):
            return
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text("".join(line + "\n" for line in kept))
        os.replace(temporary, self.path)

    def last_step(self) -> int | None:
        """The step of the log's last row (rank 0; None elsewhere or when empty)."""
        if not self.enabled or not self.path.is_file():
            return None
        rows = [line for line in self.path.read_text().splitlines() if line.strip()]
        return json.loads(rows[-1])["step"] if rows else None

    def write(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **values}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.trackers:
            from galaxy_hpc.train.trackers import numeric

            for tracker in self.trackers:
                tracker.scalars(step, numeric(values))

    def image(self, step: int, tag: str, path: str | Path) -> None:
        """A sample grid PNG, as an image in every tracker (not only as a file)."""
        if not self.trackers:
            return
        import numpy as np
        from PIL import Image

        with Image.open(path) as picture:
            pixels = np.asarray(picture.convert("RGB"))
        for tracker in self.trackers:
            tracker.image(step, tag, pixels, f"{Path(path).name} (step {step})")

    def close(self) -> list[str]:
        """Close the trackers; the lines they leave for the user (printed here too)."""
        lines = [line for line in (t.close() for t in self.trackers) if line]
        self.trackers = []
        for line in lines:
            print(line, flush=True)
        return lines


class LossWindow:
    """This rank's losses (and a family's loss terms) since the last logged step.

    Saved in every checkpoint: a run resumed between two logged steps then averages the
    same micro-steps as the uninterrupted run, instead of only those after the resume."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.terms: dict[str, list[float]] = {}

    def add(self, loss: float, terms: dict[str, float]) -> None:
        self.losses.append(loss)
        for name, value in terms.items():
            self.terms.setdefault(name, []).append(value)

    def __len__(self) -> int:
        return len(self.losses)

    def means(self) -> dict[str, float]:
        """This rank's means, "loss" first, then the terms by name (the same order on every
        rank: the caller all-reduces them one by one)."""
        means = {"loss": sum(self.losses) / max(len(self.losses), 1)}
        for name in sorted(self.terms):
            means[name] = sum(self.terms[name]) / len(self.terms[name])
        return means

    def clear(self) -> None:
        self.losses.clear()
        self.terms.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"losses": list(self.losses), "terms": {k: list(v) for k, v in self.terms.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses = list(state["losses"])
        self.terms = {k: list(v) for k, v in state["terms"].items()}


class Throughput:
    """Images per second over the last logging window, for the whole job."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._images = 0

    def add(self, images: int) -> None:
        self._images += images

    def skip(self, seconds: float) -> None:
        """Leave out time spent on something other than training (a validation)."""
        self._start += seconds

    def read_and_reset(self) -> tuple[float, float]:
        now = time.perf_counter()
        elapsed = max(now - self._start, 1e-9)
        rate = self._images / elapsed
        self._start, self._images = now, 0
        return rate, elapsed


def memory_report(env: Any, device: Any, num_params: dict[str, int], zero: Any, *,
                  ema: bool) -> dict[str, Any]:
    """Every rank's peak resident memory (a collective) beside the ZeRO model state
    expected per rank, in GB, with the parameter counts it was computed from."""
    import torch
    import torch.distributed as torch_dist

    from hpc.memory import peak_rss_bytes
    from hpc.zero import expected_state_bytes

    peaks = torch.zeros(env.world_size, dtype=torch.float64, device=device)
    peaks[env.rank] = peak_rss_bytes() / 1e9
    torch_dist.all_reduce(peaks)
    expected = expected_state_bytes(**num_params, precision=zero.precision, stage=zero.stage,
                                    world_size=env.world_size, ema=ema)
    return {"peak_rss_gb": [round(float(v), 3) for v in peaks],
            "zero_state_gb_per_rank": round(expected / 1e9, 3), **num_params}
