"""compression: jpeg-source - keep each source JPEG file as it is, instead of its pixels.

Taken only when ingest would change nothing: the file is already a size x size RGB JPEG
(no crop, resize or colour conversion), so its bytes decode to exactly the pixels a
pixel store would hold, and the store's digests (computed by hpc.store from PIL's decode
of the kept bytes) are those of such a store. Any other file stops the job with one line
naming it - there is no fallback to pixels: a store holds JPEG files or pixels, never
both, and silently re-encoding would make the option lie about what it kept. Files that
cannot be read at all are rejects as in every ingest.

Only sources whose records are image files (folder, jsonl, votes) can keep them; FITS and
NPY sources are arrays, and float32 flux is never stored lossily (the spec refuses it).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from galaxy_hpc.data.ingest.config import IngestConfig
from galaxy_hpc.data.ingest.records import Listing
from hpc.store.spec import JPEG_SOURCE

FILE_KINDS = ("folder", "jsonl", "votes")


def check_source(cfg: IngestConfig, listing: Listing) -> None:
    """Before any block: refuse sources that are not image files."""
    if cfg.compression == JPEG_SOURCE and listing.kind not in FILE_KINDS:
        raise ValueError(
            f"compression {JPEG_SOURCE} keeps source JPEG files; a {listing.kind} source holds "
            f"{listing.dtype} arrays, not JPEG files: use compression none or zstd")


def source_jpeg(path: str, size: int) -> bytes:
    """The bytes of `path` when it is a size x size RGB JPEG; ValueError naming it if not."""
    with Image.open(path) as img:
        fmt, mode, (width, height) = img.format, img.mode, img.size
    if (fmt, mode, width, height) != ("JPEG", "RGB", size, size):
        raise ValueError(
            f"{path}: a {width}x{height} {mode} {fmt}, and compression {JPEG_SOURCE} keeps "
            f"only {size}x{size} RGB JPEG files as they are (ingest would have to "
            f"{_change(fmt, mode, width, height, size)}); resize/convert the sources first or "
            "use compression zstd")
    return Path(path).read_bytes()


def _change(fmt: str | None, mode: str, width: int, height: int, size: int) -> str:
    changes = []
    if (width, height) != (size, size):
        changes.append(f"crop/resize it to {size}x{size}")
    if mode != "RGB":
        changes.append(f"convert {mode} to RGB")
    if fmt != "JPEG":
        changes.append(f"store {fmt} pixels")
    return " and ".join(changes)
