"""Staging for stores whose item count is known only after the work (ingest with rejects).

Each process writes numbered parts of any size (0 included) into `X.staging/` beside the
target store `X`; once every part is written (a barrier, the caller's), every rank calls
`compact_staging`, which creates the store with N = the sum of the part counts and copies
items in part order into the destination shards that rank owns (r, r + world, ...); one
process then finalizes the store and removes the staging folder. The result depends only
on the parts, not on how many processes wrote or compacted them.

    X.staging/
      spec.json
      part-00000012/            written as a hidden temp folder, then renamed
        meta.json               {"count": n}
        images.npy              (n, C, H, W), memory-mapped when compacting
        images.jpeg / images.offsets.npy    jpeg-source stores: the files, concatenated
        col-<name>.npy          numeric columns
        col-<name>.utf8 / col-<name>.offsets.npy   string columns (exact, any character)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hpc.store._fs import atomic_write_json, replace_dir, temp_sibling
from hpc.store.items import coerce_columns, coerce_items, empty_items
from hpc.store.jpeg import as_blobs
from hpc.store.reader import open_store
from hpc.store.spec import StoreSpec
from hpc.store.writer import create_store

_PART = re.compile(r"^part-(\d+)$")


def staging_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".staging")


class Staging:
    """Parts of a store being ingested. Several processes may write different parts."""

    def __init__(self, root: Path, spec: StoreSpec) -> None:
        self.root = root
        self.spec = spec

    def _part_dir(self, part_id: int) -> Path:
        return self.root / f"part-{part_id:08d}"

    def completed_parts(self) -> set[int]:
        """Parts fully written (a killed writer leaves only a hidden temp folder)."""
        return {int(m.group(1)) for m in map(_PART.match, os.listdir(self.root)) if m}

    def part_counts(self) -> dict[int, int]:
        return {
            part: json.loads((self._part_dir(part) / "meta.json").read_text())["count"]
            for part in sorted(self.completed_parts())
        }

    def write_part(
        self, part_id: int, images: Any, columns: Mapping[str, Any] | None = None
    ) -> None:
        """Write (or rewrite) one part atomically: all of it appears at once, or nothing."""
        if isinstance(part_id, bool) or not isinstance(part_id, (int, np.integer)) or part_id < 0:
            raise ValueError(f"part_id must be a non-negative integer, got {part_id!r}")
        where = f"part {part_id}"
        if self.spec.keeps_jpeg:  # the files; the writer decodes them again for digests
            images = as_blobs(images, where)
            columns = coerce_columns(self.spec, columns or {}, len(images), where)
        else:
            images, columns = coerce_items(self.spec, images, columns, where=where)
        final = self._part_dir(int(part_id))
        tmp = temp_sibling(final, "writing")
        tmp.mkdir()
        try:
            if self.spec.keeps_jpeg:
                _save_blobs(tmp, "images.jpeg", list(images))
            else:
                np.save(tmp / "images.npy", images)
            for name, values in columns.items():
                if self.spec.columns[name] == "str":
                    _save_blobs(tmp, f"col-{name}.utf8", [v.encode("utf-8") for v in values])
                else:
                    np.save(tmp / f"col-{name}.npy", values)
            atomic_write_json(tmp / "meta.json", {"count": int(images.shape[0])})
            replace_dir(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def read_part(
        self, part_id: int, start: int, stop: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Items [start, stop) of one part, reading only those bytes."""
        folder = self._part_dir(part_id)
        if self.spec.keeps_jpeg:
            images = _load_blobs(folder, "images.jpeg", start, stop)
        else:
            images = np.array(np.load(folder / "images.npy", mmap_mode="r")[start:stop])
        columns: dict[str, np.ndarray] = {}
        for name, dtype in self.spec.columns.items():
            if dtype == "str":
                values = _load_blobs(folder, f"col-{name}.utf8", start, stop)
                values[:] = [value.decode("utf-8") for value in values]
                columns[name] = values
            else:
                columns[name] = np.load(folder / f"col-{name}.npy", mmap_mode="r")[start:stop]
        return images, columns

    def gather(
        self, parts: list[int], offsets: np.ndarray, start: int, stop: int
    ) -> tuple[np.ndarray, dict]:
        """Items [start, stop) of the concatenation of `parts` (offsets: cumulative counts)."""
        images, columns = empty_items(self.spec)
        pieces = [(images, columns)]
        index = int(np.searchsorted(offsets, start, side="right")) - 1
        while start < stop:
            part_start, part_stop = int(offsets[index]), int(offsets[index + 1])
            if part_stop > start:
                end = min(stop, part_stop)
                pieces.append(self.read_part(parts[index], start - part_start, end - part_start))
                start = end
            index += 1
        return (
            np.concatenate([p[0] for p in pieces]),
            {name: np.concatenate([p[1][name] for p in pieces]) for name in self.spec.columns},
        )


def _offsets_name(name: str) -> str:
    return f"{name.rsplit('.', 1)[0]}.offsets.npy"


def _save_blobs(folder: Path, name: str, blobs: list[bytes]) -> None:
    """Byte strings of any content, concatenated, with their offsets beside them."""
    offsets = np.cumsum([0] + [len(b) for b in blobs], dtype=np.int64)
    (folder / name).write_bytes(b"".join(blobs))
    np.save(folder / _offsets_name(name), offsets)


def _load_blobs(folder: Path, name: str, start: int, stop: int) -> np.ndarray:
    """Byte strings [start, stop) of a `_save_blobs` file (object array), reading only those."""
    offsets = np.load(folder / _offsets_name(name))[start : stop + 1]
    with open(folder / name, "rb") as handle:
        handle.seek(int(offsets[0]))
        blob = handle.read(int(offsets[-1] - offsets[0]))
    relative = offsets - offsets[0]
    values = np.empty(stop - start, dtype=object)
    values[:] = [blob[a:b] for a, b in zip(relative[:-1], relative[1:], strict=True)]
    return values


def open_staging(path: str | os.PathLike, spec: StoreSpec) -> Staging:
    """Open (creating if needed) the staging folder of the store at `path`. Every writer
    calls this; a different spec than the one already there raises ValueError."""
    root = staging_path(path)
    root.mkdir(parents=True, exist_ok=True)
    spec_file = root / "spec.json"
    if not spec_file.is_file():
        atomic_write_json(spec_file, spec.to_dict())  # racing writers write identical bytes
    stored = StoreSpec.from_dict(json.loads(spec_file.read_text()))
    diffs = stored.differences(spec)
    if diffs:
        raise ValueError(
            f"{root} holds parts of another spec (stored != requested): {'; '.join(diffs)}"
        )
    return Staging(root, spec)


def _existing_staging(path: str | os.PathLike) -> Staging | None:
    root = staging_path(path)
    try:
        spec = StoreSpec.from_dict(json.loads((root / "spec.json").read_text()))
    except FileNotFoundError:
        return None
    return Staging(root, spec)


def compact_staging(
    path: str | os.PathLike,
    rank: int = 0,
    world_size: int = 1,
    attrs: Mapping[str, Any] | None = None,
) -> list[int]:
    """Copy all staged parts, in part order, into the store at `path`; this rank writes the
    pending destination shards j with j % world_size == rank. Every rank may call it at
    once (the store is created race-free); re-running it is harmless. Returns the shards
    written."""
    if not (isinstance(rank, int) and isinstance(world_size, int) and 0 <= rank < world_size):
        raise ValueError(
            f"need 0 <= rank < world_size, got rank={rank!r} world_size={world_size!r}"
        )
    staging = _existing_staging(path)
    if staging is None:
        if Path(path).exists():
            open_store(path)  # already compacted, finalized and cleaned up: nothing to do
            return []
        raise FileNotFoundError(
            f"{staging_path(path)}: no staging folder (write parts with open_staging first)"
        )
    counts = staging.part_counts()
    parts = sorted(counts)
    offsets = np.cumsum([0] + [counts[part] for part in parts])
    writer = create_store(path, staging.spec, num_items=int(offsets[-1]), attrs=attrs)
    if writer.manifest.complete:
        return []
    written = []
    for shard in writer.pending_shards():
        if shard % world_size == rank:
            start, stop = writer.shard_bounds(shard)
            images, columns = staging.gather(parts, offsets, start, stop)
            writer.write_shard(shard, images, columns)
            written.append(shard)
    return written


def remove_staging(path: str | os.PathLike) -> None:
    """Delete the staging folder once the store at `path` is finalized (refuses before)."""
    root = staging_path(path)
    if not root.exists():
        return
    open_store(path)  # raises if the store is not finalized: the parts are still needed
    shutil.rmtree(root)
