"""Which reader a source needs: the kind from the config, or guessed from the path.

Guessing (source_kind=auto): a vote table given -> votes; `.jsonl` -> jsonl; `.npy` -> npy;
`.h5`/`.hdf5` -> hdf5 (a file of arrays, as Galaxy10's); a glob or a FITS file -> fits; a
folder -> fits if it holds FITS files and no images, folder if it holds images and no
FITS files (with both, name the kind). Sub-folders are
looked at only with folder.recursive (or folder.labels).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

from galaxy_hpc.data.ingest.config import IngestConfig
from galaxy_hpc.data.file_names import FITS_ENDINGS, HDF5_ENDINGS
from galaxy_hpc.data.ingest.folder import walk_files
from galaxy_hpc.data.ingest.records import Decoded, Listing

# fits_stack is a listing's kind, not a source's: the fits source lists one file holding
# a stack of stamps as such (fits_stack.py), and its module reads them.
_MODULES = {kind: f"galaxy_hpc.data.ingest.{kind}" for kind in
            ("folder", "jsonl", "fits", "fits_stack", "npy", "hdf5", "votes")}


class Reader(Protocol):
    def decode(self, index: int) -> Decoded: ...


def detect_kind(cfg: IngestConfig) -> str:
    if cfg.source_kind != "auto":
        return cfg.source_kind
    source = cfg.source
    lower = source.lower()
    if cfg.votes.table:
        return "votes"
    if lower.endswith(".jsonl"):
        return "jsonl"
    if lower.endswith(".npy"):
        return "npy"
    if lower.endswith(HDF5_ENDINGS):
        return "hdf5"
    if any(char in source for char in "*?[") or lower.endswith(FITS_ENDINGS):
        return "fits"
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    if path.is_dir():
        names = [name.lower() for name in walk_files(path, cfg.folder.recursive
                                                        or cfg.folder.labels)]
        has_fits = any(n.endswith(FITS_ENDINGS) for n in names)
        images = tuple(e.lower() for e in cfg.folder.extensions)
        has_images = any(n.endswith(images) for n in names)
        if has_fits and not has_images:
            return "fits"
        if has_images and not has_fits:
            return "folder"
        if has_fits:
            raise ValueError(f"{source}: the folder holds both FITS files and images; name "
                             "the kind with --kind")
        raise ValueError(f"{source}: the folder holds no FITS files and no images"
                         + _below(path, cfg, images))
    raise ValueError(f"{source}: cannot tell what this is from its name; name the kind with "
                     f"--kind (folder, jsonl, fits, npy, hdf5, votes)")


def _below(path: Path, cfg: IngestConfig, images: tuple[str, ...]) -> str:
    """What to say of a folder with nothing at its top: class folders (spiral/, elliptical/)
    are the usual reason, and then the flags that read them, not --kind, are the answer."""
    if cfg.folder.recursive or cfg.folder.labels:
        return "; name the kind with --kind"
    found = [n for n in walk_files(path, True) if n.lower().endswith((*images, *FITS_ENDINGS))]
    if not found:
        return "; name the kind with --kind"
    folders = sorted({n.split("/")[0] for n in found})
    shown = ", ".join(f"{f}/" for f in folders[:4]) + (", ..." if len(folders) > 4 else "")
    return (f", but its sub-folders hold {len(found)} image or FITS files ({shown}): "
            "--labels to take each sub-folder's name as the class (a label column), or "
            "folder.recursive=true to take them all without")


def list_records(cfg: IngestConfig, kind: str) -> Listing:
    return importlib.import_module(_MODULES[kind]).list_records(cfg)


def open_reader(cfg: IngestConfig, listing: Listing) -> Reader:
    return importlib.import_module(_MODULES[listing.kind]).Reader(cfg, listing)
