"""Run under mpiexec by test_mpi_runs.py: each rank accumulates its share, one all-reduce."""

import json
import sys

import numpy as np

from hpc.mpi import Moments, allreduce_sum, split_range, world

comm = world()
data = np.random.default_rng(42).normal(size=(1000, 5)) * np.arange(1, 6)
mine = split_range(len(data), comm.rank, comm.size)
moments = Moments(5)
moments.add(data[mine.start:mine.stop])
total = moments.allreduce(comm)
# an array in uneven pieces (7 elements a call) sums like one call
pieces = allreduce_sum(np.arange(30.0).reshape(5, 6) * (comm.rank + 1), comm, piece=7)
if comm.rank == 0:
    json.dump({"size": comm.size, "count": total.count, "mean": total.mean.tolist(),
               "cov": total.covariance().tolist(), "pieces": pieces.tolist()},
              open(sys.argv[1], "w"))
