"""How much memory this process has held: its peak resident set, for the run reports.

A peak per rank, beside what ZeRO should hold (hpc.zero.expected_state_bytes), is
what tells a user whether a run that fits on a node of the test tier will fit on
theirs, and whether something holds a whole model it should have partitioned.
"""

from __future__ import annotations

import resource
import sys


def peak_rss_bytes() -> int:
    """The most resident memory this process has held (getrusage's ru_maxrss)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux counts KiB
