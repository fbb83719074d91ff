"""Content hashes of model files: the model identity a catalog records.

A path says where a model was, not what it was: folders get overwritten by the next
training run. The hash of a folder is a sha256 over its files in sorted relative-path
order (each as path, size and its own sha256), hidden files and caches left out, so it
changes when any weight or config changes and not when the folder is copied elsewhere.
SD-1.5 in fp32 (~5 GB) hashes in a few seconds, once, on rank 0.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from galaxy_hpc.generate.conditions.rows import file_sha256


def path_sha256(path: str | Path) -> str:
    """'sha256:<hex>' of a file, or of a folder's files (see the module docstring)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such model file or folder")
    digest = hashlib.sha256(b"galaxy-hpc folder hash v1\n")
    for item in sorted(p for p in path.rglob("*") if p.is_file() and not _ignored(p, path)):
        relative = item.relative_to(path).as_posix()
        digest.update(f"{relative}\0{item.stat().st_size}\0{file_sha256(item)}\n".encode())
    return "sha256:" + digest.hexdigest()


def _ignored(item: Path, root: Path) -> bool:
    parts = item.relative_to(root).parts
    return any(part.startswith(".") or part == "__pycache__" for part in parts)


def model_hashes(files: dict[str, str]) -> dict[str, str]:
    """{role: sha256} for a generator's identity()["files"]."""
    return {role: path_sha256(path) for role, path in sorted(files.items())}


def short_hash(hashes: dict[str, str]) -> str:
    """16 hex digits naming the model (all its files together), for a per-object column."""
    joined = "\n".join(f"{role}={value}" for role, value in sorted(hashes.items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]
