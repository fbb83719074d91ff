"""A batch job's output against what is already there: resume the same work, refuse to mix
two, or start over when asked.

Batch jobs that write a store (synth, ingest, generate) are rerun with the same command
after a kill or a preemption and then finish the store they started. Run with other
inputs or settings, they must not add their shards to a store made from the first
ones: the result would read as one catalog with one checksum and be two. So each job
describes what decides its output's content as a fingerprint (a nested dict of plain
values: config, seeds, model hashes, a digest of the inputs), keeps it with the output,
and before writing anything calls `check_fingerprint`, which lists the differences and
names the flag that starts over (`--overwrite`, `overwrite=true` in a config).
`remove_output` is that start over: it deletes a store and the files a job writes
beside it, and refuses anything that is not a store, so a mistyped path costs nothing.
`remove_leftovers` clears the hidden temporary siblings a killed writer leaves.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

OVERWRITE_HINT = "pass --overwrite (overwrite=true in a config) to delete it and start over"
MAX_LISTED = 8  # differences in one message; a line a person reads

# hpc.store._fs.temp_sibling: `.{name}.{tag}-{12 hex}`; ingest's durable writes:
# `.{name}.{pid}.tmp`.
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:[a-z]+-[0-9a-f]{12}|\d+\.tmp)$")


class OutputMismatch(ValueError):
    """The output holds work of other inputs or settings (one line for the CLI)."""


def differences(stored: Any, wanted: Any, prefix: str = "") -> list[str]:
    """`key: stored != wanted` lines between two fingerprints (nested dicts)."""
    if isinstance(stored, dict) and isinstance(wanted, dict):
        lines = []
        for key in sorted(set(stored) | set(wanted), key=str):
            lines += differences(stored.get(key), wanted.get(key), f"{prefix}{key}.")
        return lines
    if stored != wanted:
        return [f"{prefix.rstrip('.') or 'fingerprint'}: {_short(stored)} != {_short(wanted)}"]
    return []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_fingerprint(path: str | Path, stored: Any, wanted: Any, *, what: str) -> None:
    """Raise OutputMismatch listing the differences unless `stored` (the fingerprint kept
    with the output at `path`; None when it has none) is `wanted`."""
    if stored is None:
        raise OutputMismatch(f"{path} already exists and is not {what}; write to another "
                             f"output, or {OVERWRITE_HINT}")
    diffs = differences(stored, wanted)
    if diffs:
        more = f"; ... ({len(diffs) - MAX_LISTED} more)" if len(diffs) > MAX_LISTED else ""
        raise OutputMismatch(
            f"{path} already holds {what} made from other inputs or settings (stored != "
            f"this run: {'; '.join(diffs[:MAX_LISTED])}{more}). Rerun the command that made "
            f"it to finish it, write to another output, or {OVERWRITE_HINT}")


def _backend(path: Path) -> Any:
    """The backend of the store at `path` (an unfinished HDF5 store is only its shard
    folder: `path` itself need not exist); None when nothing, or an empty folder, is
    there; OutputMismatch naming what is there otherwise."""
    from hpc.store.writer import detect_backend

    try:
        backend = detect_backend(path)
        backend.read_manifest()  # raises unless this is one of our stores
        return backend
    except FileNotFoundError:
        return None
    except ValueError as error:
        if path.is_dir() and not any(path.iterdir()):
            return None
        raise OutputMismatch(f"{path} exists and is not a store ({error}); choose another "
                             "output (--overwrite deletes only stores)") from None


def store_attrs(path: str | Path) -> dict[str, Any] | None:
    """The attributes of the store at `path`, finished or not; None when there is none."""
    backend = _backend(Path(path))
    return None if backend is None else dict(backend.read_manifest().attrs)


def claim_output(path: str | Path, wanted: Any, *, key: str, what: str,
                 overwrite: bool) -> None:
    """Before a job writes its store at `path`: with `overwrite`, delete what is there (a
    store only); else refuse a store whose fingerprint (its attribute `key`) is not
    `wanted`. Nothing there, or the same work: the job creates or finishes it."""
    if overwrite:
        remove_output(path)
        return
    stored = store_attrs(path)
    if stored is not None:
        check_fingerprint(path, stored.get(key), wanted, what=what)


def remove_output(path: str | Path, also: Iterable[str | Path] = ()) -> None:
    """Delete the store at `path` (refusing anything else that is there) and the files
    and folders `also` names (what the job writes beside it: tables, rejects, staging)."""
    path = Path(path)
    try:
        backend = _backend(path)
    except OutputMismatch as error:
        raise OutputMismatch(f"refusing to overwrite {path}: {error}") from None
    paths = [path] if backend is None else list(backend.paths())
    for item in [*paths, *map(Path, also)]:
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item)
        else:
            item.unlink(missing_ok=True)


def remove_leftovers(paths: Iterable[str | Path]) -> list[Path]:
    """Delete the hidden temporary siblings of `paths` (`.NAME.creating-3f2a...`,
    `.NAME.1234.tmp`) that a writer killed mid-rename leaves behind, and those inside
    the folders among `paths` (a store counts with all its parts). Call it once the
    output is complete, when no writer of this job is still running. Returns what was
    removed."""
    removed = []
    for path in [item for path in paths for item in _with_store_parts(Path(path))]:
        folders = [path.parent]
        if path.is_dir():
            folders += [Path(root) for root, _, _ in os.walk(path)]
        for folder in folders:
            for entry in _listdir(folder):
                match = _TEMP.match(entry.name)
                if match is None or (folder == path.parent and match["name"] != path.name):
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


def _with_store_parts(path: Path) -> list[Path]:
    """A store's own paths (an HDF5 master and its shard folder), else the path itself."""
    from hpc.store.writer import detect_backend

    try:
        return [path, *(p for p in detect_backend(path).paths() if p != path)]
    except (ValueError, FileNotFoundError):
        return [path]


def _listdir(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
