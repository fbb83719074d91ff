"""Requests from many clients onto the one device: a queue and one worker thread that
merges waiting requests into full generator calls.

The worker takes the oldest request, waits up to `max_wait_s` for others to arrive, and
draws together every waiting request that shares its batch key (steps, guidance, size,
img2img strength) while the images fit in `max_batch`; one request larger than
`max_batch` runs alone. A GPU draws 16 images in about the time of one, so under load
the queue turns many small requests into few full batches; alone, a request waits at
most `max_wait_s` more than it would have.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


class QueueFull(RuntimeError):
    """More images wait than the server takes (503)."""


@dataclass
class _Waiting:
    request: Any  # galaxy_hpc.generate.ondemand.DrawRequest
    future: Future
    arrived: float = field(default_factory=time.monotonic)


class BatchQueue:
    def __init__(self, model: Any, *, max_batch: int, max_wait_s: float,
                 max_queue_images: int, on_batch: Any = None) -> None:
        self.model = model  # an OnDemandModel
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue_images = max_queue_images
        self.on_batch = on_batch  # called with (images, seconds) after each generator call
        self._waiting: deque[_Waiting] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="ghpc-batch", daemon=True)
        self._thread.start()

    # -- clients ------------------------------------------------------------------------
    @property
    def depth(self) -> tuple[int, int]:
        """(requests, images) waiting."""
        with self._cond:
            return len(self._waiting), sum(w.request.n for w in self._waiting)

    def submit(self, request: Any) -> Future:
        self.model.check(request)  # a bad request fails here, not in someone's batch
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise QueueFull("the server is shutting down")
            waiting = sum(w.request.n for w in self._waiting)
            if waiting + request.n > self.max_queue_images:
                raise QueueFull(f"{waiting} images are waiting for the device (limit "
                                f"{self.max_queue_images}); try again shortly")
            self._waiting.append(_Waiting(request, future))
            self._cond.notify()
        return future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    # -- the worker ---------------------------------------------------------------------
    def _take(self) -> list[_Waiting] | None:
        with self._cond:
            while not self._waiting and not self._closed:
                self._cond.wait()
            if self._closed and not self._waiting:
                return None
            deadline = self._waiting[0].arrived + self.max_wait_s
            while not self._closed:
                if self._images_ready() >= self.max_batch:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(timeout=left)
            first = self._waiting.popleft()
            group, total = [first], first.request.n
            key = first.request.batch_key()
            for waiting in list(self._waiting):
                fits = total + waiting.request.n <= self.max_batch
                if fits and waiting.request.batch_key() == key:
                    group.append(waiting)
                    total += waiting.request.n
                    self._waiting.remove(waiting)
            return group

    def _images_ready(self) -> int:
        key = self._waiting[0].request.batch_key()
        return sum(w.request.n for w in self._waiting if w.request.batch_key() == key)

    def _work(self) -> None:
        while True:
            group = self._take()
            if group is None:
                return
            live = [w for w in group if w.future.set_running_or_notify_cancel()]
            if not live:
                continue
            started = time.perf_counter()
            try:
                results = self.model.draw([w.request for w in live])
            except Exception as error:  # noqa: BLE001  every caller hears of it
                for waiting in live:
                    waiting.future.set_exception(error)
                continue
            if self.on_batch is not None:
                self.on_batch(sum(w.request.n for w in live), time.perf_counter() - started)
            for waiting, result in zip(live, results):
                waiting.future.set_result(result)
