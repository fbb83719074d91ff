"""StoreLoader: a DataLoader over a StoreDataset that can say where it is, and resume there.

    dataset = StoreDataset(path, rank=env.rank, world_size=env.world_size, seed=cfg.seed,
                           batch_size=cfg.batch_size, drop_last=True, augment=GalaxyAugment())
    loader = StoreLoader(dataset, num_workers=4)
    if resuming:
        loader.load_state_dict(checkpoint["data"])
    for epoch in range(loader.epoch, cfg.num_epochs):
        loader.set_epoch(epoch)
        for batch in loader:
            ...  # step; a state_dict() taken now resumes with the next batch
            checkpoint["data"] = loader.state_dict()

The state holds the epoch and the samples this rank has been handed in it. Ranks step
together, so every rank is at the same position and one rank's state (rank 0's, in the
checkpoint) resumes them all; each rank rebuilds its own order from it. Resuming needs
the same seed, world size, batch size and num_workers (the order depends on them), else
load_state_dict raises rather than silently training on a different sample sequence.

Workers start with "forkserver" by default: a fork of a clean server process, so no
zarrs thread pool, HDF5 handle or CUDA context of the training process is inherited
(zarrs cannot run after fork(): hpc/store/README.md), and, with torch and this module
preloaded in the server, a worker starts in a fraction of a second where "spawn" pays
a fresh interpreter and torch import (~4 s here); the server itself starts once per
process (~5 s here, the first epoch). "fork" works too, but a worker forked after this
process read images with zarrs (the stretch estimate of a float32 store does) reads
with zarr's ~10x slower pipeline, and forking a process holding CUDA is unsafe. As with
"spawn", a script that builds the loader needs an `if __name__ == "__main__":` guard.
Workers are not persistent: each epoch's pass starts them afresh with the dataset's
current epoch and resume position (a persistent worker would keep the epoch it started
with).

A worker ends when the process that made the loader does, however it ended
(`_watch_loader_owner`). The DataLoader's own watchdog watches a worker's parent, which
under forkserver is the server, and the server lives as long as any of its children do:
a trainer killed with SIGKILL (the OOM killer, `kill -9`, a node outside Slurm's
cgroups) left its workers and the server waiting forever, each holding its batches'
shared memory.

The DataLoader reads whole batches (`StoreBatches`, batch_size=None): the dataset makes
each batch at once, as the DataLoader would have made it from items, with the same
round robin over workers, so state_dict positions are unchanged.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import threading
import time
from functools import partial
from typing import Any

from torch.utils.data import DataLoader

from galaxy_hpc.data.dataset import StoreBatches, StoreDataset

CONTEXTS = ("forkserver", "spawn", "fork")
_PRELOAD = ["torch", "galaxy_hpc.data.dataset", "galaxy_hpc.data.loader"]


def _as_made(batch: dict[str, Any]) -> dict[str, Any]:
    """The DataLoader's collate_fn: batches come made (a module function, so that it pickles
    to workers)."""
    return batch


def worker_context(name: str) -> Any:
    """The multiprocessing context for DataLoader workers (forkserver preloads torch)."""
    if name not in CONTEXTS:
        raise ValueError(f"multiprocessing_context must be one of {', '.join(CONTEXTS)}, "
                         f"got {name!r}")
    context = multiprocessing.get_context(name)
    if name == "forkserver":
        context.set_forkserver_preload(_PRELOAD)  # takes effect when the server starts
    return context


def _watch_loader_owner(owner: int, worker_id: int) -> None:
    """A worker's init: end this worker the moment process `owner` (the loader's) ends."""
    threading.Thread(target=_exit_after, args=(owner,), daemon=True,
                     name=f"loader-owner-watch-{worker_id}").start()


def _exit_after(owner: int) -> None:
    try:  # a pidfd names this process, not a later one given its pid
        handle = os.pidfd_open(owner)
    except (AttributeError, OSError):
        handle = None
    if handle is not None:
        select.select([handle], [], [])  # readable once the owner has exited
        os._exit(0)
    while True:  # no pidfd (not Linux, or a kernel before 5.3): poll
        time.sleep(2.0)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass


class StoreLoader:
    """Batches of a StoreDataset (see the module docstring); len() is batches per epoch."""

    def __init__(self, dataset: StoreDataset, *, num_workers: int = 0,
                 pin_memory: bool = False, prefetch_factor: int | None = None,
                 multiprocessing_context: str = "forkserver", timeout_s: float = 0.0) -> None:
        if not isinstance(dataset, StoreDataset):
            raise TypeError(f"StoreLoader reads a StoreDataset, got {type(dataset).__name__}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
        self.dataset = dataset
        self.num_workers = num_workers
        self._context = worker_context(multiprocessing_context) if num_workers else None
        self._options = {"pin_memory": pin_memory, "timeout": timeout_s}
        if num_workers:
            self._options["prefetch_factor"] = prefetch_factor
        self._start = 0  # samples of this epoch skipped by a resume
        self.samples_seen = 0

    @property
    def epoch(self) -> int:
        return self.dataset.epoch

    @property
    def batch_size(self) -> int:
        return self.dataset.batch_size

    def __len__(self) -> int:
        return len(range(0, len(self.dataset), self.batch_size))  # batches, the last short

    def set_epoch(self, epoch: int) -> None:
        """Move to `epoch`; setting the epoch a resume is in keeps the resume position."""
        if epoch != self.dataset.epoch:
            self._start = self.samples_seen = 0
        self.dataset.set_epoch(epoch)

    def __iter__(self):
        loader = DataLoader(StoreBatches(self.dataset), batch_size=None, collate_fn=_as_made,
                            num_workers=self.num_workers,
                            multiprocessing_context=self._context,
                            persistent_workers=False,
                            worker_init_fn=(partial(_watch_loader_owner, os.getpid())
                                            if self.num_workers else None),
                            **self._options)
        self.samples_seen = self._start
        for batch in loader:
            self.samples_seen += len(batch["index"])
            yield batch

    def _layout(self) -> dict[str, Any]:
        ds = self.dataset
        return {"seed": ds.seed, "world_size": ds.world_size,
                "batch_size": ds.batch_size, "num_workers": self.num_workers,
                "num_items": len(ds.store), "shuffle": ds.shuffle, "drop_last": ds.drop_last,
                "shuffle_shards": ds.shuffle_shards}

    def state_dict(self) -> dict[str, Any]:
        """Where this rank is: epoch, samples handed out in it, and the layout they
        depend on. JSON-able."""
        return {"epoch": self.epoch, "samples_seen": self.samples_seen,
                "rank": self.dataset.rank, **self._layout()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state`: the next pass over its epoch yields exactly the samples an
        uninterrupted run would have yielded next."""
        layout = self._layout()
        differ = [f"{k}: saved {state.get(k)!r}, now {v!r}" for k, v in layout.items()
                  if state.get(k) != v]
        if differ:
            raise ValueError("cannot resume the data order exactly, the layout changed ("
                             + "; ".join(differ) + "); restore it, or start a new epoch "
                             "without load_state_dict")
        # Without drop_last ranks may differ by one item: another rank's count at the end
        # of the epoch can exceed ours by the last short batch, and means "epoch done".
        seen = min(int(state["samples_seen"]), len(self.dataset))
        self.dataset.set_epoch(int(state["epoch"]))
        self.dataset.skip(seen, self.num_workers)
        self._start = self.samples_seen = seen
