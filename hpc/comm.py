"""One small communicator for batch jobs, whatever launched them.

Batch jobs (ingest, synth, generation) need a few collectives between ranks:
a barrier, a broadcast, an allgather of small Python objects, a sum. Under an
MPI launcher (srun with pmi2, mpiexec) that is mpi4py's COMM_WORLD. Under
launchers that start no MPI (submitit's local executor, torchrun), mpi4py
would see a world of one, so the same calls go through torch.distributed
with gloo. Jobs call `job_comm()` and never ask which one they got.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np

from hpc.dist import DistEnv, resolve_env

_MPI_VARIABLES = ("PMI_RANK", "PMI_FD", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")


class Comm(Protocol):
    rank: int
    size: int

    def barrier(self) -> None: ...

    def bcast(self, obj: Any, root: int = 0) -> Any: ...

    def allgather(self, obj: Any) -> list[Any]: ...

    def allreduce_sum(self, values: np.ndarray) -> np.ndarray: ...


class MpiComm:
    """mpi4py's COMM_WORLD (a singleton world of one when not launched by MPI).

    Every collective first waits, asleep, until all ranks have reached it. MPICH and Open
    MPI busy-poll inside blocking calls, so a rank waiting for rank 0 (computing the
    metrics, writing a report) or for a straggler's last batch would hold a core at 100%:
    on a node with fewer cores than ranks, or under other jobs, that core is taken from
    the ranks still working. The sleeping wait costs at most `max_poll_s` of latency per
    collective, which batch jobs (a few collectives a run) never notice.
    """

    max_poll_s = 0.005

    def __init__(self) -> None:
        from mpi4py import MPI

        self._comm = MPI.COMM_WORLD
        self.rank = self._comm.rank
        self.size = self._comm.size

    def _wait_for_all(self) -> None:
        if self.size == 1:
            return
        arrived = self._comm.Ibarrier()
        pause = 1e-4
        while not arrived.Test():
            time.sleep(pause)
            pause = min(2 * pause, self.max_poll_s)

    def barrier(self) -> None:
        self._wait_for_all()

    def bcast(self, obj: Any, root: int = 0) -> Any:
        self._wait_for_all()
        return self._comm.bcast(obj, root=root)

    def allgather(self, obj: Any) -> list[Any]:
        self._wait_for_all()
        return self._comm.allgather(obj)

    def allreduce_sum(self, values: np.ndarray) -> np.ndarray:
        from hpc.mpi import allreduce_sum

        self._wait_for_all()
        return allreduce_sum(values, self._comm)

    @property
    def mpi(self) -> Any:
        """The underlying mpi4py communicator, for jobs that need MPI proper (work queues)."""
        return self._comm


class TorchComm:
    """The same calls over torch.distributed with gloo (CPU tensors, pickled objects)."""

    def __init__(self, env: DistEnv) -> None:
        import torch.distributed as torch_dist

        from hpc.dist import destroy_distributed, init_distributed

        if not torch_dist.is_initialized():
            init_distributed(dataclasses.replace(env, backend="gloo"))
            # The group is ours: tear it down at exit. A process that exits with gloo's
            # threads still running can abort in their destructors ("terminate called
            # without an active exception", seen in ~1 of 6 two-rank runs here), and
            # torchrun then kills the other ranks and fails the job after it finished.
            atexit.register(destroy_distributed)
        self._dist = torch_dist
        self.rank = torch_dist.get_rank()
        self.size = torch_dist.get_world_size()

    def barrier(self) -> None:
        self._dist.barrier()

    def bcast(self, obj: Any, root: int = 0) -> Any:
        box = [obj if self.rank == root else None]
        self._dist.broadcast_object_list(box, src=root)
        return box[0]

    def allgather(self, obj: Any) -> list[Any]:
        gathered: list[Any] = [None] * self.size
        self._dist.all_gather_object(gathered, obj)
        return gathered

    def allreduce_sum(self, values: np.ndarray) -> np.ndarray:
        import torch

        array = np.asarray(values)
        wire = np.int64 if np.issubdtype(array.dtype, np.integer) else np.float64
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=wire).copy())
        self._dist.all_reduce(tensor)
        return tensor.numpy()


def launched_by_mpi(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return any(name in env for name in _MPI_VARIABLES)


def job_comm(env: DistEnv | None = None) -> Comm:
    """The communicator for this job: MPI when launched by MPI or alone, else gloo."""
    env = env or resolve_env(cuda_available=False)
    if env.world_size == 1 or launched_by_mpi():
        comm = MpiComm()
        if comm.size != env.world_size:
            raise RuntimeError(
                f"MPI sees {comm.size} ranks but the launcher announced {env.world_size} "
                f"({env.source}); with srun, pass --mpi=pmi2 (or the site's MPI plugin)")
        return comm
    return TorchComm(env)


T = TypeVar("T")
_SHARED_ERRORS = {"ValueError": ValueError, "FileNotFoundError": FileNotFoundError}


def on_root(comm: Comm, work: Callable[[], T]) -> T:
    """`work()` on rank 0 alone (set up an output, estimate a stretch from a sample, reduce
    gathered values), its result on every rank. Its one-line error (ValueError,
    FileNotFoundError) is raised on every rank, as the same type: the other ranks stop with
    it instead of waiting at the next collective for a rank that left."""
    result, failure = None, None
    if comm.rank == 0:
        try:
            result = work()
        except tuple(_SHARED_ERRORS.values()) as error:
            failure = (type(error).__name__, str(error))
    result, failure = comm.bcast((result, failure))
    if failure is not None:
        kind, message = failure
        raise _SHARED_ERRORS.get(kind, ValueError)(message)
    return result

