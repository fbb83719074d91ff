"""GalaxySD: a folder of JPEG/PNG images with same-named .txt captions.

Captions live in a second folder (GalaxySD's `caption_file`) or beside the images.
There is a caption column when a caption folder is given or the image folder holds
any .txt file; then every image needs a non-empty caption (unless
require_captions=false, which stores ""). The id is the file name without its
extension (with recursive=true, the relative path without extension), so `a.jpg` and
`a.png` share an id and the second is a duplicate.

Astro-Diffusion sorts its images into class folders (`spiral_galaxies/`, `nebulae/`,
`planets/`): with folder.labels=true the folder is walked recursively and the first
sub-folder of each image under SOURCE becomes its `label` column, so the class survives
into the store (for conditioning, or to balance a training set); an image directly in
SOURCE has no class and is a `no_label` reject.

Images of float pixels (TIFF files of flux, PIL mode F) are measurements, not 8-bit
pictures: a folder of them becomes a float32 single-band store whose pixels are
resampled as FITS ones are (flux kept), not an RGB store of clipped, black images.
Which of the two a folder is, most of its first readable images say (PROBE_FILES); an
image of the other kind in it is a `pixel_type` reject.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from galaxy_hpc.data.ingest.config import IngestConfig
from galaxy_hpc.data.ingest.preprocess import float_image, uint8_image
from galaxy_hpc.data.ingest.records import (
    Decoded,
    Deduper,
    Listing,
    Reject,
    RejectError,
    check_caption,
)


def walk_files(root: Path, recursive: bool) -> list[str]:
    """Relative posix paths of the non-directory entries under root, sorted."""
    found: list[str] = []
    if recursive:
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            rel = Path(folder).relative_to(root)
            found += [(rel / name).as_posix() for name in files]
    else:
        found = [e.name for e in os.scandir(root) if not e.is_dir()]
    return sorted(found)


LABEL_COLUMN = "label"
PROBE_FILES = 8  # images whose pixel type decides whether a folder is float or 8-bit


def float_folder(paths: list[Path]) -> bool:
    """Whether the folder's images are float (PIL mode F): most of the first readable of
    `paths` decide (the others become `pixel_type` rejects); a tie is an error."""
    modes = []
    for path in paths[:PROBE_FILES]:
        try:
            with Image.open(path) as img:
                modes.append(img.mode == "F")
        except (OSError, ValueError, SyntaxError):
            continue  # unreadable: its decode rejects it
    floats = sum(modes)
    if modes and 2 * floats == len(modes):
        raise ValueError(f"{paths[0].parent}: as many float (PIL mode F) as 8-bit images "
                         f"among the first {len(modes)}; ingest the two kinds into separate "
                         "stores")
    return 2 * floats > len(modes)


def class_label(relative: str) -> str | None:
    """The class folder of an image given by its path relative to the root (the first
    sub-folder), or None for an image directly in the root."""
    head, sep, _ = relative.partition("/")
    return head if sep else None


def list_records(cfg: IngestConfig) -> Listing:
    root = Path(cfg.source)
    opts = cfg.folder
    recursive = opts.recursive or opts.labels
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder (the images' folder is missing)")
    if not root.is_dir():
        raise ValueError(f"{root}: a file, not a folder of images")
    extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}"
                       for e in opts.extensions)
    names = walk_files(root, recursive)
    images = [n for n in names if n.lower().endswith(extensions)]
    if not images:
        raise ValueError(f"{root}: no images found ({', '.join(extensions)})")
    caption_root = Path(opts.captions) if opts.captions else root
    if opts.captions and not caption_root.is_dir():
        raise ValueError(f"{caption_root}: caption folder not found")
    texts = set(names) if caption_root == root else set(walk_files(caption_root, recursive))
    texts = {n for n in texts if n.endswith(".txt")}
    with_captions = cfg.captions and (opts.captions is not None or bool(texts))

    ids, sources, caption_files, labels, rejects = [], [], [], [], []
    dedupe = Deduper()
    for name in images:
        record_id = name.rsplit(".", 1)[0]
        source = str(root / name)
        duplicate = dedupe.check(record_id, source)
        if duplicate:
            rejects.append(duplicate)
            continue
        label = class_label(name)
        if opts.labels and label is None:
            rejects.append(Reject(source, f"no_label: {name} is not in a class folder of "
                                  f"{root}", record_id))
            continue
        text = f"{record_id}.txt"
        if with_captions and text not in texts and cfg.require_captions:
            rejects.append(Reject(source, f"missing_caption: no {caption_root / text}",
                                  record_id))
            continue
        ids.append(record_id)
        sources.append(source)
        caption_files.append(str(caption_root / text) if text in texts else "")
        labels.append(label)
    flux = float_folder([Path(s) for s in sources])
    listing = Listing(
        kind="folder", ids=ids, sources=sources, dtype="float32" if flux else "uint8",
        channels=1 if flux else 3,
        column_types={"caption": "str"} if with_captions else {},
        rejects=rejects, inputs=[str(root)] + ([str(caption_root)] if opts.captions else []),
        notes={"captions": str(caption_root) if with_captions else None,
               **({"pixels": "float (PIL mode F): flux", "flux": cfg.flux} if flux else {})},
        payload=caption_files if with_captions else None,
    )
    if opts.labels:
        listing.column_types[LABEL_COLUMN] = "str"
        listing.columns[LABEL_COLUMN] = np.array(labels, dtype=object)
        listing.notes["labels"] = dict(sorted(Counter(labels).items()))
    return listing


class Reader:
    def __init__(self, cfg: IngestConfig, listing: Listing) -> None:
        self.cfg = cfg
        self.listing = listing

    def decode(self, index: int) -> Decoded:
        columns = {}
        if self.listing.payload is not None:
            caption_file = self.listing.payload[index]
            if caption_file:
                raw = Path(caption_file).read_bytes()
                try:
                    text = raw.decode("utf-8-sig")
                except UnicodeDecodeError:
                    raise RejectError("bad_caption", f"{caption_file} is not UTF-8") from None
                try:
                    columns["caption"] = check_caption(text)
                except RejectError:
                    if self.cfg.require_captions:
                        raise
                    columns["caption"] = text.strip().replace("\x00", "")
            else:
                columns["caption"] = ""
        with Image.open(self.listing.sources[index]) as img:
            if self.listing.dtype == "uint8":
                image, side = uint8_image(img, self.cfg.size, draft=self.cfg.jpeg_draft)
            elif img.mode != "F":
                raise RejectError("pixel_type", f"an 8-bit image (PIL mode {img.mode}) in a "
                                                "folder of float images; ingest it apart")
            else:
                image, side = float_image(np.asarray(img, dtype=np.float32), self.cfg.size,
                                          channels=1, flux=self.cfg.flux)
        return Decoded(image, side, columns)
