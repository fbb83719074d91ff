"""The store's own metadata: spec, item count, user attributes, completion and checksum.

Both backends keep the same manifest (zarr: group attribute `hpc_store`; HDF5: a JSON
attribute of the master file), so everything above the backends reads one structure.
"""

from __future__ import annotations

import json
import numbers
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Mapping

from hpc.store.spec import StoreSpec

FORMAT_VERSION = 1
MANIFEST_KEY = "hpc_store"


@dataclass(frozen=True)
class Manifest:
    spec: StoreSpec
    num_items: int
    attrs: dict[str, Any] = field(default_factory=dict)
    complete: bool = False
    checksum: str | None = None
    created_at: str = ""
    finalized_at: str | None = None
    format_version: int = FORMAT_VERSION
    # Names this store, not its content: HDF5 shard files carry it, so a master never
    # reads another store's shards (a copy, a same-named folder). None in stores written
    # before it existed.
    store_id: str | None = None

    @property
    def num_shards(self) -> int:
        return self.spec.num_shards(self.num_items)

    def shard_bounds(self, shard: int) -> tuple[int, int]:
        if not 0 <= shard < self.num_shards:
            raise ValueError(
                f"shard {shard} is out of range: this store has shards 0..{self.num_shards - 1}"
            )
        return self.spec.shard_bounds(shard, self.num_items)

    def finalized(self, checksum: str, attrs: Mapping[str, Any] | None) -> "Manifest":
        merged = {**self.attrs, **check_attrs(attrs or {})}
        return replace(self, attrs=merged, complete=True, checksum=checksum, finalized_at=now())

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "spec": self.spec.to_dict(),
            "num_items": self.num_items,
            "complete": self.complete,
            "checksum": self.checksum,
            "created_at": self.created_at,
            "finalized_at": self.finalized_at,
            "attrs": self.attrs,
            "store_id": self.store_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Manifest":
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"store format version {version!r} is not supported (expected {FORMAT_VERSION})"
            )
        return cls(
            spec=StoreSpec.from_dict(data["spec"]),
            num_items=int(data["num_items"]),
            attrs=dict(data.get("attrs") or {}),
            complete=bool(data.get("complete")),
            checksum=data.get("checksum"),
            created_at=data.get("created_at", ""),
            finalized_at=data.get("finalized_at"),
            store_id=data.get("store_id"),
        )

    @classmethod
    def new(cls, spec: StoreSpec, num_items: int, attrs: Mapping[str, Any] | None) -> "Manifest":
        if (
            isinstance(num_items, bool)
            or not isinstance(num_items, numbers.Integral)
            or num_items < 0
        ):
            raise ValueError(f"num_items must be a non-negative integer, got {num_items!r}")
        return cls(
            spec=spec,
            num_items=int(num_items),
            attrs=check_attrs(attrs or {}),
            created_at=now(),
            store_id=uuid.uuid4().hex,
        )


def check_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes travel as JSON in both backends; reject what JSON cannot hold, here,
    rather than half-way through a write."""
    try:
        return json.loads(json.dumps(dict(attrs), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"attrs must be JSON-serialisable (str, numbers, lists, dicts): {error}"
        ) from None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
