"""hpc.allocator: freed batch buffers stay in the process, so the next batch does not
page-fault them in again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CHILD = """
import json, resource, sys
import numpy as np
from hpc.allocator import keep_freed_memory
applied = keep_freed_memory()
def batch():  # a batch's activations: four 8 MiB buffers, written, then freed together
    blocks = [np.ones(1 << 20) for _ in range(4)]
    del blocks
batch()  # warm up: the first batch is faulted in either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    batch()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": applied, "faults": faults}))
"""

PAGES_PER_BLOCK = (8 << 20) // os.sysconf("SC_PAGE_SIZE")


def run_child(**env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          env={**os.environ, **env}, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_reused_blocks_are_not_faulted_in_again():
    default = run_child(HPC_KEEP_FREED_MEMORY="0")
    kept = run_child()
    assert default["applied"] is False and kept["applied"] is True
    # glibc's default: part of the freed heap top goes back to the kernel (what is over
    # its trim threshold), so every batch faults at least one 8 MiB block in again
    assert default["faults"] >= 10 * PAGES_PER_BLOCK * 0.9
    # kept: the freed blocks are reused from the heap
    assert kept["faults"] < 2 * PAGES_PER_BLOCK


def test_left_alone_under_a_preloaded_allocator():
    assert run_child(LD_PRELOAD="/nonexistent/libjemalloc.so.2")["applied"] is False
