"""Rank 0's view of the whole job: objects done by every rank, rate, time left.

Ranks take shards dynamically, so no rank knows what the others have done. The store
does: a shard is done exactly when its completion record exists. A thread on rank 0
lists those records once a second (one small directory listing, on a shared file system
too) and moves a tqdm bar to the objects they cover, so the bar counts finished shards of
all ranks, including those an earlier, killed run finished (the bar's starting point, so
the rate and time left are this run's).
"""

from __future__ import annotations

import sys
import threading
from typing import Any


class CatalogProgress:
    def __init__(self, writer: Any, *, enabled: bool, desc: str, interval_s: float = 1.0) -> None:
        self._writer = writer
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=writer.num_items, initial=self.done(), unit="obj", desc=desc,
                             file=sys.stderr, mininterval=interval_s, smoothing=0.1,
                             dynamic_ncols=True)

    def done(self) -> int:
        """Objects in completed shards, from the completion records on disk."""
        total = 0
        for shard in self._writer.completed_shards():
            start, stop = self._writer.shard_bounds(shard)
            total += stop - start
        return total

    def _refresh(self) -> None:
        if self._bar is not None:
            done = self.done()
            if done > self._bar.n:
                self._bar.update(done - self._bar.n)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._refresh()
            except OSError:  # a listing racing a rename; the next one will do
                pass

    def __enter__(self) -> "CatalogProgress":
        if self._bar is not None:
            self._thread = threading.Thread(target=self._run, name="catalog-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._refresh()
            self._bar.close()
