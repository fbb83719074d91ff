"""Run by test_comm.py under mpiexec or torchrun: exercise every collective of job_comm(),
and on_root (work on rank 0 alone, its result or its error on every rank)."""

import json
import sys

import numpy as np

from hpc.comm import MpiComm, job_comm, on_root

comm = job_comm()
shared = comm.bcast({"plan": list(range(5))} if comm.rank == 0 else None)
gathered = comm.allgather(("rank", comm.rank))
summed = comm.allreduce_sum(np.array([comm.rank + 1.5, 2.0]))
counts = comm.allreduce_sum(np.array([comm.rank + 1], dtype=np.int64))
ran = []  # the ranks that ran the work (each rank sees its own)
from_root = on_root(comm, lambda: ran.append(comm.rank) or f"measured on {comm.rank}")


def fail():
    raise ValueError("survey.zarr is damaged")


try:
    on_root(comm, fail)
    failure = None
except ValueError as error:
    failure = str(error)
again = on_root(comm, lambda: ran.append(comm.rank) or comm.rank)
per_rank = comm.allgather({"ran": ran, "from_root": from_root, "failure": failure,
                           "again": again})
comm.barrier()
if comm.rank == 0:
    json.dump({"kind": "mpi" if isinstance(comm, MpiComm) else "torch", "size": comm.size,
               "shared": shared, "gathered": gathered, "summed": summed.tolist(),
               "counts": counts.tolist(), "count_dtype": str(counts.dtype),
               "per_rank": per_rank},
              open(sys.argv[1], "w"))
