"""Dynamic work distribution: ranks take the next item as they become free.

A fixed slice per rank makes the job as slow as its slowest rank (a node
with a thermally throttled GPU, a shard of big images). Here every rank asks
for the next index of a shared list when it is ready, so fast ranks take more.

The counter is one integer in a torch.distributed TCPStore, incremented with
its atomic `add` (one small round trip). The store's server is a C++ thread
in rank 0, so it answers even while rank 0 is busy in Python or on its GPU.
MPI's one-sided Fetch_and_op looked like the natural tool, but without an
asynchronous progress thread (mpich's default) it completes only when rank 0
enters MPI, so a busy rank 0 stalls everyone: measured here, the deliberately
slow rank 0 ended up with the most items. Under a process group the default
store is used; under plain MPI rank 0 starts a store and announces its address.

Each item is handed out exactly once. The list itself (e.g. the shards still
to do) must be the same on every rank; a rerun after a kill recomputes it, so
nothing about the queue needs saving.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from hpc.comm import Comm

T = TypeVar("T")


class SharedCounter:
    """next() -> 0, 1, 2, ... across all ranks together; each value returned once."""

    def __init__(self, comm: Comm, name: str = "ghpc-workqueue") -> None:
        import torch.distributed as torch_dist

        self._comm = comm
        if torch_dist.is_available() and torch_dist.is_initialized():
            from torch.distributed.distributed_c10d import _get_default_store

            self._store = _get_default_store()
        else:
            self._store = _announced_store(comm)
        # A fresh key per counter: an earlier counter of this name may have counted.
        self._key = f"{name}/{comm.bcast(_unique_token() if comm.rank == 0 else None)}"
        comm.barrier()

    def next(self) -> int:
        return int(self._store.add(self._key, 1)) - 1

    def close(self) -> None:
        """Collective: every rank calls it after its last next()."""
        self._comm.barrier()


def _announced_store(comm: Comm) -> Any:
    """A TCPStore served by rank 0 on a free port; its address shared over `comm`."""
    import os
    import socket
    from datetime import timedelta

    from torch.distributed import TCPStore

    server = None
    address = None
    if comm.rank == 0:
        host = os.environ.get("MASTER_ADDR") or socket.gethostname()
        server = TCPStore(host, 0, world_size=None, is_master=True,
                          timeout=timedelta(seconds=600), wait_for_workers=False)
        address = (host, server.port)
    host, port = comm.bcast(address)
    if server is not None:
        return server
    return TCPStore(host, port, world_size=None, is_master=False, timeout=timedelta(seconds=600))


def dynamic_items(items: Sequence[T], comm: Comm, name: str = "ghpc-workqueue") -> Iterator[T]:
    """Yield items of `items` (identical on every rank) as this rank claims them.

    Collective at start and end: every rank must iterate to the end.
    """
    counter = SharedCounter(comm, name)
    try:
        while True:
            index = counter.next()
            if index >= len(items):
                return
            yield items[index]
    finally:
        counter.close()


def _unique_token() -> str:
    import os
    import time

    return f"{os.getpid()}-{time.time_ns()}"
