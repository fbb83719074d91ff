"""A store writer that dies after its first shard, as a job does when its node is lost
mid-run: what resumable jobs are tested against."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def node_lost_after_one_shard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Inside: StoreWriter.write_shard writes one shard, then raises RuntimeError("node
    lost"), which the block must raise; after it, writing works again. Yields the list of
    the shards written before the loss."""
    from hpc.store.writer import StoreWriter

    real_write = StoreWriter.write_shard
    calls = []

    def dies_after_one(self, shard, *rest, **kw):
        if calls:
            raise RuntimeError("node lost")
        calls.append(shard)
        return real_write(self, shard, *rest, **kw)

    monkeypatch.setattr(StoreWriter, "write_shard", dies_after_one)
    try:
        with pytest.raises(RuntimeError, match="node lost"):
            yield calls
    finally:
        monkeypatch.setattr(StoreWriter, "write_shard", real_write)
