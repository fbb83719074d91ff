"""Filesystem steps that make lock-free concurrent writers safe: atomic file writes and
atomic publication of a freshly built directory."""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def temp_sibling(path: Path, tag: str = "tmp") -> Path:
    """A hidden, unique name in the same directory, so that a rename onto `path` stays on
    one filesystem (and is therefore atomic)."""
    return path.with_name(f".{path.name}.{tag}-{uuid.uuid4().hex[:12]}")


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temp sibling to write `path` into: renamed onto `path` when the block succeeds,
    deleted when it raises. Readers see either the old file or the whole new one, never a
    torn write, and a killed writer leaves only a hidden temp file."""
    tmp = temp_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=1).encode())


def publish_dir(tmp: Path, final: Path) -> bool:
    """Rename a fully built directory into place. Returns False (and deletes `tmp`) when
    another process published `final` first: rename(2) refuses to replace a non-empty
    directory, which makes creation race-free without locks."""
    try:
        os.rename(tmp, final)
        return True
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        return False


def replace_dir(tmp: Path, final: Path) -> None:
    """Swap a rebuilt directory in for an existing one (used when a part is rewritten)."""
    if final.exists():
        trash = temp_sibling(final, "old")
        os.rename(final, trash)
        os.rename(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(tmp, final)


def dir_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
