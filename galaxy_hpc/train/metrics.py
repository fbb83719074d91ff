"""What a training run reports: a JSONL log, TensorBoard, images/s and MFU.

Rank 0 writes; every rank contributes to the averaged loss. MFU (model FLOP
utilisation) is the achieved training FLOP/s over the device's peak dense
FLOP/s for the precision in use, with FLOP counted per image by the model
family (one forward and backward pass, counted with torch's FlopCounterMode).
It is reported on GPUs only: a CPU has no meaningful peak to divide by.
"""

from __future__ import annotations

import json
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
    """train_log.jsonl (one JSON object per logged step) and TensorBoard, on rank 0 only."""

    def __init__(self, output_dir: str | Path, *, enabled: bool, tensorboard: bool) -> None:
        self.enabled = enabled
        self.path = Path(output_dir) / "train_log.jsonl"
        self._writer = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(Path(output_dir) / "tensorboard"))

    def write(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **values}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(key, value, step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class Throughput:
    """Images per second over the last logging window, for the whole job."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._images = 0

    def add(self, images: int) -> None:
        self._images += images

    def read_and_reset(self) -> tuple[float, float]:
        now = time.perf_counter()
        elapsed = max(now - self._start, 1e-9)
        rate = self._images / elapsed
        self._start, self._images = now, 0
        return rate, elapsed
