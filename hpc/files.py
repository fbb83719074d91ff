"""Files we write: readable by whoever the user's umask lets read them, and writable
before any work is spent on them.

safetensors 0.8.0 (pinned) writes through a temporary file from `mkstemp`, which is
created 0600 whatever the umask, and renames it into place: every `.safetensors` file,
ours (`save_file`) and those diffusers/transformers write in `save_pretrained` or
`save_lora_weights`, came out private to its owner while the JSON beside it was 0644.
A group sharing a project directory then could not load the weights it was sent.

The fix is after the fact, once per save routine, on what that routine wrote: a file
that is exactly 0600 gets the mode a plain `open()` would have given it, 0666 minus the
umask. Files with any other mode were made on purpose (an executable, a read-only
copy) and are left alone; so are files of other owners, which we could not change.

`read_json` is how a file we (or diffusers) wrote is read back where a damaged copy is
possible: json's own message says "line 2 column 18" and never which file.

`check_writable` is what every command calls on its outputs before it starts: an
unwritable output folder used to surface as a traceback from deep inside a writer,
and for jobs that write only at the end (evaluate, predict) after all the work.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

# The mode mkstemp gives; nothing else in our writers produces it under a usual umask.
_MKSTEMP_MODE = 0o600
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows.

    /proc/self/status has a `Umask:` line (Linux >= 4.7). Elsewhere the only way is to
    set a umask and put the old one back; the lock keeps two of our own threads from
    interleaving that round trip (another thread creating a file in between would
    still see umask 0o077 for an instant, which only makes that file more private).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        old = os.umask(0o077)
        os.umask(old)
    return old


def follow_umask(*paths: str | os.PathLike) -> list[Path]:
    """Give every 0600 file at or under `paths` the mode 0666 & ~umask. Returns the files
    changed. Call it at the end of a routine that wrote safetensors files (directly or
    through diffusers/transformers), on the file or folder it wrote."""
    mode = 0o666 & ~current_umask()
    if mode == _MKSTEMP_MODE:
        return []  # umask 077: 0600 is what the user asked for
    uid = os.geteuid()
    changed = []
    for path in _files(paths):
        info = path.lstat()
        if (stat.S_ISREG(info.st_mode) and info.st_uid == uid
                and stat.S_IMODE(info.st_mode) == _MKSTEMP_MODE):
            os.chmod(path, mode)
            changed.append(path)
    return changed


def _files(paths) -> list[Path]:
    found = []
    for path in map(Path, paths):
        if path.is_dir() and not path.is_symlink():
            for folder, _, names in os.walk(path):
                found.extend(Path(folder) / name for name in names)
        elif path.exists():
            found.append(path)
    return found


class DamagedFile(ValueError):
    """A file is there but cannot be read back (truncated, not JSON). A ValueError, so
    that the CLI reports it as one line naming the file (galaxy_hpc.cli.main)."""


def read_json(path: str | os.PathLike, what: str = "") -> Any:
    """The JSON in `path`; DamagedFile naming the path (and `what` it is) when the text
    is not JSON: a copy cut short by a full disk or an interrupted transfer."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        label = f" ({what})" if what else ""
        raise DamagedFile(f"{path}{label} is not valid JSON ({error}): the file is damaged "
                          "or cut short; copy it again from where it was written") from None


def safetensors_damage(path: str | os.PathLike) -> str | None:
    """Why the .safetensors file `path` cannot be whole, or None when it looks whole.

    Reads only the header (8 bytes of length, then JSON naming each tensor's byte span):
    a file cut short ends before the last span does. safetensors' own error says
    "incomplete metadata" and never which file, and a pipeline holds several.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if length < 2 or 8 + length > size:
            return f"{size} bytes, shorter than its own header says"
        try:
            header = json.loads(handle.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return "its header is not JSON"
    if not isinstance(header, dict):
        return "its header is not a table of tensors"
    ends = [entry["data_offsets"][1] for key, entry in header.items()
            if key != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry]
    needed = 8 + length + max(ends, default=0)
    if size < needed:
        return f"{size} bytes of the {needed} its header names: cut short"
    return None


def damaged_safetensors(path: str | os.PathLike) -> list[str]:
    """'FILE (why)' for every .safetensors file under the folder `path` (or the file
    `path` itself) that is not whole."""
    path = Path(path)
    files = sorted(path.rglob("*.safetensors")) if path.is_dir() else \
        [path] if path.suffix == ".safetensors" and path.is_file() else []
    found = []
    for file in files:
        why = safetensors_damage(file)
        if why:
            found.append(f"{file} ({why})")
    return found


@contextmanager
def loading_from(where: str, *paths: Any) -> Iterator[None]:
    """Around a library's loading of local weights (`from_pretrained`, `load_file`):
    OSError (diffusers' and transformers' way of saying a file is bad or missing) and
    safetensors' own error become one DamagedFile line saying `where` and why. `paths`
    are the folders (or files) the weights come from: a .safetensors file cut short
    there is named with how short it is (safetensors' message names no file);
    otherwise the loader's own reason, which names a bad config or a missing part.
    FileNotFoundError passes as it is."""
    from safetensors import SafetensorError

    try:
        yield
    except FileNotFoundError:
        raise
    except (OSError, SafetensorError) as error:
        damaged = [found for path in paths if path for found in damaged_safetensors(path)]
        if damaged:
            raise DamagedFile(f"{where}: damaged weights {'; '.join(damaged)}; copy them "
                              "again from where they were written") from error
        raise DamagedFile(f"{where}: {error}") from error


class NotWritable(ValueError):
    """An output cannot be written. A ValueError, so that the CLI reports it as one line
    (galaxy_hpc.cli.main) like every other mistake a user can fix."""


def check_writable(path: str | os.PathLike, what: str) -> Path:
    """Raise NotWritable (one line naming `what`, `path` and the cause) unless `path` can
    be created or replaced. Creates nothing that stays: folders a job makes on the way
    to its output are made when it writes, not here.

    Permission bits alone do not answer it (root ignores them; read-only mounts, immutable
    folders and ACLs do not show in them), so the folder that would receive the output
    is asked directly: a hidden probe file is created there with O_EXCL and removed.
    That folder is `path` itself when it is an existing folder (a store or run folder we
    write into), else the nearest existing folder above it; a plain file on the way
    (`out/afile/x.zarr` where afile is a file) can never become a folder.
    """
    path = Path(path)
    target = path if path.is_dir() else path.parent
    while not target.exists() and target != target.parent:
        target = target.parent
    if target.exists() and not target.is_dir():
        raise NotWritable(f"cannot write {what} {path}: {target} is a file, not a folder")
    if path.exists() and not path.is_dir() and not os.access(path, os.W_OK):
        raise NotWritable(f"cannot write {what} {path}: the file is read-only")
    probe = target / f".ghpc-write-check-{uuid.uuid4().hex[:12]}"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as error:
        reason = {errno.EROFS: "read-only file system", errno.ENOSPC: "no space left",
                  errno.EDQUOT: "disk quota exceeded"}.get(error.errno)
        reason = reason or error.strerror or type(error).__name__
        where = "" if target == path else f" (the folder {target})"
        raise NotWritable(f"cannot write {what} {path}: no permission to create files "
                          f"in {target}" if error.errno in (errno.EACCES, errno.EPERM)
                          else f"cannot write {what} {path}{where}: {reason}") from None
    probe.unlink(missing_ok=True)
    return path
