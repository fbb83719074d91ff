"""Run by test_comm.py under mpiexec or torchrun: exercise every collective of job_comm()."""

import json
import sys

import numpy as np

from hpc.comm import MpiComm, job_comm

comm = job_comm()
shared = comm.bcast({"plan": list(range(5))} if comm.rank == 0 else None)
gathered = comm.allgather(("rank", comm.rank))
summed = comm.allreduce_sum(np.array([comm.rank + 1.5, 2.0]))
counts = comm.allreduce_sum(np.array([comm.rank + 1], dtype=np.int64))
comm.barrier()
if comm.rank == 0:
    json.dump({"kind": "mpi" if isinstance(comm, MpiComm) else "torch", "size": comm.size,
               "shared": shared, "gathered": gathered, "summed": summed.tolist(),
               "counts": counts.tolist(), "count_dtype": str(counts.dtype)},
              open(sys.argv[1], "w"))
