"""A cache of a real store's feature statistics, keyed by what they depend on.

The real side of a FID is the same for every model compared against it, and extracting it
is half the work (all of it for a big survey sample against a small catalog). An entry is
keyed by the store's content checksum (hpc.store: it changes with any image or column and
does not depend on where the store lives), the extractor (name, class, layers, a
fingerprint of the weights), the pixel map (stretch, bands) and the settings that shape
the statistics (batch size, kept features, IS splits, seed). A store that changes gets a
new key, so the old entry is never used again; it is deleted when the new one is written
(entries remember the store path they were made from).

On disk: `<store name>-<key>.npz` (float64 sums, kept float32 features) plus a `.json`
beside it saying what the entry is. Written by one rank, atomically (rename).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.evaluate.accumulate import IscSums, StoreStats
from hpc.mpi import Moments

CACHE_VERSION = 1


@dataclass(frozen=True)
class CacheKey:
    store_path: str
    checksum: str
    extractor: dict[str, Any]
    pixels: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        content = {"version": CACHE_VERSION, "checksum": self.checksum,
                   "extractor": {k: v for k, v in self.extractor.items() if k != "weights"},
                   "pixels": self.pixels, "settings": self.settings}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:24]


@dataclass
class CacheOutcome:
    status: str  # "hit", "miss" (computed and written), "off"
    file: str | None = None
    removed_stale: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "file": self.file, "removed_stale": self.removed_stale}


class StatsCache:
    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def path_for(self, key: CacheKey) -> Path:
        return self.folder / f"{Path(key.store_path).name}-{key.digest()}.npz"

    def load(self, key: CacheKey) -> StoreStats | None:
        arrays = self.load_arrays(key)
        try:
            return None if arrays is None else _stats_from(arrays)
        except (ValueError, KeyError):
            return None  # from another version: recompute and overwrite

    def save(self, key: CacheKey, stats: StoreStats) -> CacheOutcome:
        return self.save_arrays(key, _arrays_of(stats), stats.num_items)

    def load_arrays(self, key: CacheKey) -> dict[str, np.ndarray] | None:
        """The arrays of the entry for `key` (any evaluation's), None if absent or damaged."""
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return dict(data)
        except (OSError, ValueError):
            return None  # damaged: recompute and overwrite

    def save_arrays(self, key: CacheKey, arrays: dict[str, np.ndarray],
                    num_items: int) -> CacheOutcome:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path_for(key)
        removed = self._remove_stale(key)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        meta = {"store_path": str(Path(key.store_path).resolve()), "checksum": key.checksum,
                "extractor": key.extractor, "pixels": key.pixels, "settings": key.settings,
                "num_items": num_items, "version": CACHE_VERSION}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
        return CacheOutcome("miss", str(path), removed)

    def _remove_stale(self, key: CacheKey) -> list[str]:
        """Entries made from the same store path when it held other content."""
        here = str(Path(key.store_path).resolve())
        removed = []
        for meta_file in sorted(self.folder.glob("*.json")):
            try:
                meta = json.loads(meta_file.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if meta.get("store_path") == here and meta.get("checksum") != key.checksum:
                for stale in (meta_file.with_suffix(".npz"), meta_file):
                    stale.unlink(missing_ok=True)
                removed.append(str(meta_file.with_suffix(".npz")))
        return removed


def _arrays_of(stats: StoreStats) -> dict[str, np.ndarray]:
    m = stats.moments
    arrays = {"num_items": np.array(stats.num_items), "count": np.array(m.count),
              "total": m.total, "outer": m.outer, "kept_index": stats.kept_index}
    if stats.isc is not None:
        arrays.update(isc_count=stats.isc.count, isc_p_sum=stats.isc.p_sum,
                      isc_plogp_sum=stats.isc.plogp_sum)
    arrays.update({f"kept/{layer}": values for layer, values in stats.kept.items()})
    return arrays


def _stats_from(data: dict[str, np.ndarray]) -> StoreStats:
    total = data["total"]
    moments = Moments(total.shape[0], int(data["count"]), total, data["outer"])
    isc = None
    if "isc_count" in data:
        p_sum = data["isc_p_sum"]
        isc = IscSums(p_sum.shape[0], p_sum.shape[1], data["isc_count"], p_sum,
                      data["isc_plogp_sum"])
    kept = {name.split("/", 1)[1]: values for name, values in data.items()
            if name.startswith("kept/")}
    return StoreStats(int(data["num_items"]), moments, isc, data["kept_index"], kept)
