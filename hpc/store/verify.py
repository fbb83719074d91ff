"""Re-reading a store against what its writers recorded: item digests and the checksum.

The read checks (zarr_reader.py, hdf5_reader.py) find files that are missing, empty,
truncated or fail a chunk checksum. What only a full re-read finds: a changed byte in a
store without chunk checksums (stores written before they existed), or a chunk replaced
by another valid one. `verify_shard` reads one shard through the normal read path and
compares each item's sha256 with its digest; shards are independent, so ranks split them
(`galaxy-hpc store verify` under MPI) and combine the lists.

The outcome is recorded in the store (`record_verification`: zarr group attribute
`hpc_store_verified`, HDF5 `X.h5.shards/verified.json`), with the checksum it was made
against, so `store info` can say whether the store as written now was ever verified.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hpc.store.checksum import item_digests, store_checksum
from hpc.store.damage import StoreDamaged, describe_items
from hpc.store.items import coerce_items
from hpc.store.manifest import now


@dataclass(frozen=True)
class Damage:
    """Items [start, stop) that cannot be trusted, the file at fault (relative to the
    store's folder; "" when the data decodes but differs from its digest) and why."""

    start: int
    stop: int
    file: str
    reason: str

    @property
    def num_items(self) -> int:
        return self.stop - self.start

    def line(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{describe_items(self.start, self.stop)}: {where}{self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_shard(store: Any, shard: int) -> list[Damage]:
    """What is damaged in one shard ([] when every item matches its digest)."""
    start, stop = store.shard_bounds(shard)
    try:
        stored = store.read_item_digests(start, stop)
        images = store.read_images(start, stop)
        columns = {name: store.read_column(name, start, stop) for name in store.columns}
    except StoreDamaged as error:
        first, last = error.items or (start, stop)
        return [Damage(first, last, error.file or "", error.reason or str(error))]
    images, columns = coerce_items(store.spec, images, columns)
    bad = np.flatnonzero((item_digests(store.spec, images, columns) != stored).any(axis=1))
    return [
        Damage(int(start + b), int(start + b + 1), "",
               f"differs from its digest (its image or a column value changed; shard {shard})")
        for b in bad
    ]


def check_checksum(store: Any) -> Damage | None:
    """The item digests against the store checksum (a changed digest record)."""
    try:
        digests = store.read_item_digests()
    except StoreDamaged as error:
        first, last = error.items or (0, len(store))
        return Damage(first, last, error.file or "", error.reason or str(error))
    if store_checksum(store.spec, digests) != store.checksum:
        return Damage(0, len(store), "item digests",
                      "do not match the store checksum (a digest record was changed)")
    return None


def first_damage(store: Any) -> StoreDamaged | None:
    """The first damage found reading the whole store, or None (Store.verify())."""
    for shard in range(store.num_shards):
        found = verify_shard(store, shard)
        if found:
            items = [d.start for d in found][:10]
            if found[0].file:
                return StoreDamaged(f"{store.path} is damaged: {found[0].line()}",
                                    store=store.path, file=found[0].file,
                                    items=(found[0].start, found[0].stop),
                                    reason=found[0].reason)
            return StoreDamaged(f"{store.path}: shard {shard} differs from its digests "
                                f"at items {items}", store=store.path,
                                items=(found[0].start, found[-1].stop))
    bad = check_checksum(store)
    if bad is not None:
        return StoreDamaged(f"{store.path}: {bad.file} {bad.reason}", store=store.path)
    return None


def record_verification(store: Any, damage: list[Damage], num_damaged: int) -> dict[str, Any]:
    """Write the outcome into the store and return it."""
    stamp = {
        "verified_at": now(),
        "checksum": store.checksum,
        "finalized_at": store.finalized_at,
        "ok": not damage,
        "num_damaged_items": int(num_damaged),
    }
    store.write_verification(stamp)
    return stamp


def verification_state(store: Any) -> dict[str, Any]:
    """{"verified": bool, "at", "ok", "num_damaged_items"} for the store as it is now:
    a stamp made before the store was (re)finalized does not count."""
    stamp = store.read_verification()
    current = bool(stamp) and stamp.get("checksum") == store.checksum and (
        stamp.get("finalized_at") == store.finalized_at
    )
    if not current:
        return {"verified": False}
    return {"verified": True, "at": stamp.get("verified_at"), "ok": bool(stamp.get("ok")),
            "num_damaged_items": int(stamp.get("num_damaged_items", 0))}


def count_items(damage: list[Damage]) -> int:
    """Items covered by the damage records (overlaps counted once)."""
    total, reached = 0, 0
    for start, stop in sorted((d.start, d.stop) for d in damage):
        start = max(start, reached)
        if stop > start:
            total, reached = total + stop - start, stop
    return total
