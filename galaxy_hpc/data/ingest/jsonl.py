"""Astro-Diffusion: a JSONL manifest, one {"path": ..., "caption": ...} object a line.

Paths are relative to the manifest's folder unless absolute. The id is the path as
the manifest writes it. Blank lines are skipped; a line that is not a JSON object
with a path is a `bad_record` reject named `MANIFEST:LINE`. When any line has a label
(`galaxy-hpc manifest` writes the class folder there), the store gets a `label` column;
lines without one store "".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from galaxy_hpc.data.ingest.config import IngestConfig
from galaxy_hpc.data.ingest.folder import LABEL_COLUMN
from galaxy_hpc.data.ingest.preprocess import ImageFileReader
from galaxy_hpc.data.ingest.records import (
    Deduper,
    Listing,
    Reject,
    RejectError,
    check_caption,
)


def list_records(cfg: IngestConfig) -> Listing:
    manifest = Path(cfg.source)
    if not manifest.is_file():
        raise ValueError(f"{manifest}: manifest not found")
    base = manifest.parent
    path_key, caption_key = cfg.jsonl.path_key, cfg.jsonl.caption_key
    ids, sources, captions, labels, rejects = [], [], [], [], []
    dedupe = Deduper()
    with open(manifest, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{manifest}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                rejects.append(Reject(where, f"bad_record: line {number} is not JSON ({error})"))
                continue
            path = record.get(path_key) if isinstance(record, dict) else None
            if not isinstance(path, str) or not path.strip():
                rejects.append(Reject(where, f"bad_record: line {number} has no {path_key!r}"))
                continue
            source = str(Path(path) if Path(path).is_absolute() else base / path)
            duplicate = dedupe.check(path, source)
            if duplicate:
                rejects.append(duplicate)
                continue
            caption = ""
            if cfg.captions:
                value = record.get(caption_key)
                try:
                    caption = check_caption(value if isinstance(value, str) else "")
                except RejectError as error:
                    if cfg.require_captions:
                        rejects.append(Reject(source, f"{error} (line {number})", path))
                        continue
                    caption = value.strip().replace("\x00", "") if isinstance(value, str) else ""
            label = record.get(cfg.jsonl.label_key)
            if label is not None and not isinstance(label, (str, int)):
                rejects.append(Reject(where, f"bad_record: line {number}'s "
                                      f"{cfg.jsonl.label_key!r} is not a string", path))
                continue
            ids.append(path)
            sources.append(source)
            captions.append(caption)
            labels.append(None if label is None else str(label))
    if not ids and not rejects:
        raise ValueError(f"{manifest}: the manifest lists no images")
    listing = Listing(kind="jsonl", ids=ids, sources=sources, dtype="uint8", channels=3,
                      rejects=rejects, inputs=[str(manifest)])
    if cfg.captions:
        listing.column_types["caption"] = "str"
        listing.columns["caption"] = listing.ids.copy()
        listing.columns["caption"][:] = captions
    if any(label is not None for label in labels):
        listing.column_types[LABEL_COLUMN] = "str"
        listing.columns[LABEL_COLUMN] = np.array([label or "" for label in labels], dtype=object)
    return listing


Reader = ImageFileReader  # image files, one per row
