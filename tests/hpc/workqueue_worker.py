"""Run by test_workqueue.py under mpiexec or torchrun: claim items, rank 0 slow on purpose."""

import json
import sys
import time

from hpc.comm import MpiComm, job_comm
from hpc.workqueue import dynamic_items

comm = job_comm()
mine = []
for item in dynamic_items(list(range(60)), comm):
    mine.append(item)
    time.sleep(0.05 if comm.rank == 0 else 0.005)
# A second queue in the same job starts from zero again.
second = list(dynamic_items(["a", "b", "c"], comm))
claims = comm.allgather(mine)
seconds = comm.allgather(second)
if comm.rank == 0:
    json.dump({"kind": "mpi" if isinstance(comm, MpiComm) else "torch", "claims": claims,
               "second": seconds}, open(sys.argv[1], "w"))
