"""An Astro-Diffusion JSONL manifest written from an image folder.

Astro-Diffusion trains from a manifest of `{"path", "caption"}` lines made from its
class folders; `galaxy-hpc manifest` writes the same from any folder, so the folder can
be looked at, edited (captions added by hand or by a model) and ingested as a jsonl
source. One line per image, in sorted path order:

- `path`: relative to the manifest's folder (what the jsonl ingest resolves), so the
  manifest and the images can move together;
- `label`: the class folder (the image's first sub-folder), for images in one;
- `caption`: the sidecar `<name>.txt` (beside the image, or under a captions folder at
  the same relative path), when it exists and is not empty.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from galaxy_hpc.data.ingest.config import FolderOptions
from galaxy_hpc.data.ingest.folder import class_label, walk_files

IMAGE_EXTENSIONS = tuple(FolderOptions().extensions)


@dataclass(frozen=True)
class ManifestSummary:
    out: str
    num_images: int
    num_captioned: int
    labels: dict[str, int] = field(default_factory=dict)  # images per class folder


def manifest_records(folder: str | Path, out: str | Path, *, captions: str | Path | None = None,
                     extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[dict[str, str]]:
    """The manifest's lines for the images under `folder`, paths relative to `out`'s folder."""
    root, base = Path(folder), Path(out).resolve().parent
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of images")
    caption_root = Path(captions) if captions is not None else root
    if not caption_root.is_dir():
        raise FileNotFoundError(f"{caption_root}: caption folder not found")
    wanted = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    images = [n for n in walk_files(root, recursive=True) if n.lower().endswith(wanted)]
    if not images:
        raise ValueError(f"{root}: no images found ({', '.join(wanted)})")
    records = []
    for name in images:
        record = {"path": Path(os.path.relpath((root / name).resolve(), base)).as_posix()}
        label = class_label(name)
        if label is not None:
            record["label"] = label
        sidecar = caption_root / f"{name.rsplit('.', 1)[0]}.txt"
        if sidecar.is_file():
            try:
                text = sidecar.read_text(encoding="utf-8-sig").strip()
            except UnicodeDecodeError:
                raise ValueError(f"{sidecar}: the caption is not UTF-8") from None
            if text:
                record["caption"] = text
        records.append(record)
    return records


def write_manifest(folder: str | Path, out: str | Path, *, captions: str | Path | None = None,
                   extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
                   overwrite: bool = False) -> ManifestSummary:
    """Write the manifest of `folder` to `out` (whole or not at all: a temporary file is
    renamed into place); an existing `out` is replaced only with overwrite."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: the manifest exists; pass --overwrite to replace it")
    records = manifest_records(folder, out, captions=captions, extensions=extensions)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    with open(partial, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(partial, out)
    labels = Counter(r["label"] for r in records if "label" in r)
    return ManifestSummary(str(out), len(records), sum("caption" in r for r in records),
                           dict(sorted(labels.items())))
