"""What /metrics-lite reports: requests by status, latency percentiles, and the device's
throughput (images a second, batches and their mean size), from in-memory windows."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

import numpy as np

WINDOW = 4096  # latencies kept per series
RATE_WINDOW_S = 60.0  # images/s over the last minute


class Metrics:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self.statuses: Counter[str] = Counter()
        self.latency: dict[str, deque[float]] = {"all": deque(maxlen=WINDOW),
                                                  "infer": deque(maxlen=WINDOW)}
        self.images = 0
        self.batches = 0
        self.device_s = 0.0
        self._recent: deque[tuple[float, int]] = deque()

    def request(self, path: str, status: int, seconds: float) -> None:
        with self._lock:
            self.statuses[f"{status // 100}xx"] += 1
            self.latency["all"].append(seconds)
            if path == "/infer":
                self.latency["infer"].append(seconds)

    def batch(self, images: int, seconds: float) -> None:
        with self._lock:
            self.images += images
            self.batches += 1
            self.device_s += seconds
            now = time.monotonic()
            self._recent.append((now, images))
            while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
                self._recent.popleft()

    def snapshot(self, queue_depth: tuple[int, int] = (0, 0)) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            uptime = now - self.started
            window = min(RATE_WINDOW_S, uptime) or 1.0
            recent = sum(n for t, n in self._recent if t >= now - RATE_WINDOW_S)
            return {
                "uptime_s": round(uptime, 3),
                "requests": {"total": sum(self.statuses.values()), **dict(self.statuses)},
                "latency_ms": {name: percentiles(values)
                               for name, values in self.latency.items()},
                "queue": {"requests": queue_depth[0], "images": queue_depth[1]},
                "images": self.images, "batches": self.batches,
                "mean_batch_images": round(self.images / self.batches, 3) if self.batches else 0,
                "images_per_s": round(recent / window, 3),
                "images_per_device_s": round(self.images / self.device_s, 3)
                if self.device_s else 0,
            }


def percentiles(values: deque[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    ms = np.asarray(values, dtype=np.float64) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"count": len(ms), "p50": round(float(p50), 2), "p95": round(float(p95), 2),
            "p99": round(float(p99), 2)}
