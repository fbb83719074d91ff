"""Run by test_comm.py: rank 0 works for a while before a broadcast; the others report how
much CPU they used waiting for it."""

import json
import sys
import time

from hpc.comm import job_comm

comm = job_comm()
comm.barrier()
if comm.rank == 0:
    time.sleep(float(sys.argv[2]))
wall, cpu = time.perf_counter(), time.process_time()
comm.bcast("go" if comm.rank == 0 else None)
waited = {"rank": comm.rank, "wall_s": time.perf_counter() - wall,
          "cpu_s": time.process_time() - cpu}
everyone = comm.allgather(waited)
if comm.rank == 0:
    json.dump(everyone, open(sys.argv[1], "w"))
