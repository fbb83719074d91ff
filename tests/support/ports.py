"""A port of its own for each process group that rendezvous over TCP."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nobody listens on now. torch.distributed's single-process runs rendezvous on
    127.0.0.1:29500 unless told otherwise (MASTER_PORT), and a job of another test, or of
    another user of this machine, may hold it: a fixed port collides when runs overlap."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
