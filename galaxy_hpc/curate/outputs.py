"""What dedup leaves: the groups as CSV, a page of their thumbnails, and the new store.

The source store is never changed (its checksum covers every column): the clean store
holds the kept items with all their columns; with `mark`, every item, plus `keep` (bool)
and `duplicate_of` (int64 store index of the kept item, -1 when kept). Both are written
by all ranks, whole output shards each, and reopened on a rerun (completed shards stay).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.curate.groups import DuplicatePlan
from galaxy_hpc.evaluate.inputs import ExtractorInput
from hpc.comm import Comm, on_root
from hpc.mpi import split_range
from hpc.store import Store, StoreSpec, create_store, finalize_store
from hpc.store.spec import backend_for_path

CSV_FIELDS = ("group", "index", "id", "kept", "duplicate_of", "duplicate_of_id",
              "similarity", "reason")


def _ids(store: Store) -> np.ndarray:
    return store.read_column("id") if "id" in store.columns else np.arange(len(store)).astype(str)


def write_csv(path: Path, store: Store, plan: DuplicatePlan) -> Path:
    """One row per member of each group, the kept one first."""
    ids = _ids(store)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for number, members in enumerate(plan.groups):
            kept = members[0]
            for item in members:
                removed = item != kept
                writer.writerow([number, item, ids[item], not removed,
                                 kept if removed else "", ids[kept] if removed else "",
                                 f"{plan.similarity[item]:.6f}" if removed else "",
                                 plan.reason[item]])
    os.replace(tmp, path)
    return path


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(buffer, "PNG")
    return buffer.getvalue()


def write_page(folder: Path, store: Store, plan: DuplicatePlan, pixels: ExtractorInput,
               max_groups: int, facts: list[str]) -> Path:
    """index.html with each shown group's thumbnails (PNG files beside it in thumbs/)."""
    thumbs = folder / "thumbs"
    thumbs.mkdir(parents=True, exist_ok=True)
    ids = _ids(store)
    shown = plan.groups[:max_groups]
    rows = []
    for number, members in enumerate(shown):
        images = pixels.to_uint8(store.read_images_at(np.array(sorted(members)))).numpy()
        by_item = dict(zip(sorted(members), images))
        cells = []
        for item in members:
            (thumbs / f"{item}.png").write_bytes(_png(by_item[item]))
            label = ("kept" if item == members[0] else
                     f"{plan.reason[item]}, cos {plan.similarity[item]:.3f}")
            cells.append(f'<figure><img src="thumbs/{item}.png" width="96" height="96">'
                         f"<figcaption>#{item} {html.escape(str(ids[item]))}<br>"
                         f"{html.escape(label)}</figcaption></figure>")
        rows.append(f"<h3>group {number} ({len(members)} items)</h3>"
                    f'<div class="group">{"".join(cells)}</div>')
    more = (f"<p>{len(plan.groups) - len(shown):,} more group(s) in duplicates.csv</p>"
            if len(plan.groups) > len(shown) else "")
    page = folder / "index.html"
    page.write_text(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Duplicates of "
        f"{html.escape(Path(store.path).name)}</title><style>body{{font-family:sans-serif}}"
        ".group{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;font-size:12px;"
        "width:110px}img{image-rendering:pixelated}</style></head><body>"
        f"<h1>Duplicates of {html.escape(str(store.path))}</h1><ul>"
        + "".join(f"<li>{html.escape(fact)}</li>" for fact in facts) + "</ul>"
        + ("".join(rows) or "<p>No duplicates found.</p>") + more + "</body></html>")
    return page


def output_spec(store: Store, mark: bool, out: str) -> StoreSpec:
    spec = store.spec
    columns = dict(spec.columns)
    info = {name: store.column_info(name) for name in spec.columns}
    if mark:
        for name in ("keep", "duplicate_of"):
            if name in columns:
                raise ValueError(f"{store.path} already has a {name!r} column: mark cannot "
                                 "add it (write a clean store instead)")
        columns.update(keep="bool", duplicate_of="int64")
        info.update(keep={"unit": "", "description": "kept by galaxy-hpc dedup"},
                    duplicate_of={"unit": "", "description": "store index of the kept item "
                                  "this one duplicates; -1 when kept"})
    backend = backend_for_path(out, default=spec.backend)
    same = backend == spec.backend  # another backend: its own default codec
    return StoreSpec(image_shape=spec.image_shape, image_dtype=spec.image_dtype,
                     columns=columns, shard_size=spec.shard_size, backend=backend,
                     compression=spec.compression if same else None,
                     compression_level=spec.compression_level if same else None,
                     column_info={k: v for k, v in info.items() if v})


def plan_digest(store: Store, plan: DuplicatePlan, mark: bool) -> str:
    """What the new store's content follows from: the source and the decision."""
    content = hashlib.sha256(f"{store.checksum} {mark}".encode())
    content.update(np.ascontiguousarray(plan.duplicate_of, dtype="<i8").tobytes())
    return content.hexdigest()


def write_store(out: str, store: Store, plan: DuplicatePlan, *, mark: bool,
                attrs: dict[str, Any], record: Path, comm: Comm) -> str | None:
    """Collective: every rank writes its output shards; rank 0 finalises. The checksum
    on rank 0, None elsewhere. `record` holds the digest of the plan the store at `out`
    was started from: the same plan resumes it, another (a new threshold, a changed
    source) starts it over."""
    items = np.arange(len(store)) if mark else np.flatnonzero(plan.keep)
    spec = output_spec(store, mark, out)
    merged = {**store.attrs, **attrs}

    def start() -> None:
        digest = plan_digest(store, plan, mark)
        same = record.is_file() and record.read_text().strip() == digest
        create_store(out, spec, num_items=len(items), attrs=merged, overwrite=not same)
        record.write_text(digest + "\n")

    on_root(comm, start)
    extra = {"keep": plan.keep, "duplicate_of": plan.duplicate_of} if mark else {}
    return copy_items(out, store, items, spec=spec, attrs=merged, extra=extra, comm=comm)


def copy_items(out: str, store: Store, items: np.ndarray, *, spec: StoreSpec,
               attrs: dict[str, Any], comm: Comm,
               extra: dict[str, np.ndarray] | None = None) -> str | None:
    """Collective: the store at `out` (created or reopened: completed shards stay) gets
    `store`'s items `items`, in that order, with all their columns and the `extra` ones
    (indexed by store item, like `items`); every rank writes whole shards; rank 0
    finalises and returns the checksum (None elsewhere)."""
    writer = create_store(out, spec, num_items=len(items), attrs=attrs)
    pending = writer.pending_shards()
    values = {name: store.read_column(name) for name in store.spec.columns} if pending else {}
    for shard in [pending[k] for k in split_range(len(pending), comm.rank, comm.size)]:
        a, b = writer.shard_bounds(shard)
        chosen = items[a:b]
        columns = {name: column[chosen] for name, column in values.items()}
        columns.update({name: column[chosen] for name, column in (extra or {}).items()})
        writer.write_shard(shard, store.read_for(writer.spec, chosen), columns)
    comm.barrier()
    return finalize_store(out) if comm.rank == 0 else None
