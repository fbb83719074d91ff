"""Where set-aside inputs are written: a report per block while running, one CSV at the end.

Each block's report (`X.staging/block-00000012.json`: its rejects and missing header
values) is written, fsynced and renamed into place *before* the block's staging part.
A block counts as done only once its part exists, so a finished block always has its
report, and a block killed half-way is redone from scratch, report included.

At the end rank 0 writes `X.rejects.csv` beside the store X (columns source, reason,
id; the listing's rejects first, then each block's in block order, so the file is the
same for any number of ranks), before it finalizes the store; and `X.notes.csv` (source,
note, id) for records kept with something a user should know (images with NaN or
infinite pixels). Each file is written only when it has a row: an empty rejects file
beside a store read as "something was rejected" to anyone listing the folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from pathlib import Path

from galaxy_hpc.data.ingest.records import Reject

REJECTS_HEADER = ("source", "reason", "id")


NOTES_HEADER = ("source", "note", "id")


def rejects_path(store: str | os.PathLike) -> Path:
    store = Path(store)
    return store.with_name(store.name + ".rejects.csv")


def notes_path(store: str | os.PathLike) -> Path:
    store = Path(store)
    return store.with_name(store.name + ".notes.csv")


def durable_write(path: Path, data: bytes) -> None:
    """All of `data` at `path` or nothing, and on disk before this returns."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def report_path(staging_root: Path, block: int) -> Path:
    return staging_root / f"block-{block:08d}.json"


def write_block_report(staging_root: Path, block: int, rejects: list[Reject],
                       missing: Counter[str], notes: list[Reject] = ()) -> None:
    report = {"rejects": [list(r) for r in rejects], "missing": dict(missing),
              "notes": [list(n) for n in notes]}
    durable_write(report_path(staging_root, block), json.dumps(report).encode())


def read_block_reports(staging_root: Path, num_blocks: int
                       ) -> tuple[list[Reject], Counter[str], list[Reject]]:
    """(rejects, missing header values, notes) of every block, in block order."""
    rejects: list[Reject] = []
    notes: list[Reject] = []
    missing: Counter[str] = Counter()
    for block in range(num_blocks):
        report = json.loads(report_path(staging_root, block).read_text())
        rejects += [Reject(*row) for row in report["rejects"]]
        notes += [Reject(*row) for row in report.get("notes", [])]
        missing.update(report["missing"])
    return rejects, missing, notes


def write_rejects_csv(path: Path, rejects: list[Reject], header=REJECTS_HEADER) -> None:
    """The rows, or no file at all (an older one removed) when there are none."""
    if not rejects:
        path.unlink(missing_ok=True)
        return
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rejects)
    path.parent.mkdir(parents=True, exist_ok=True)
    durable_write(path, text.getvalue().encode())


def write_notes_csv(path: Path, notes: list[Reject]) -> None:
    write_rejects_csv(path, notes, NOTES_HEADER)


def read_rejects_csv(path: str | os.PathLike) -> list[Reject]:
    with open(path, newline="") as handle:
        return [Reject(row["source"], row["reason"], row["id"]) for row in csv.DictReader(handle)]


def count_by_reason(rejects: list[Reject]) -> dict[str, int]:
    return dict(sorted(Counter(r.category for r in rejects).items()))
