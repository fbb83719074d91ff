"""Files we write are readable by whoever the user's umask lets read them.

safetensors 0.8.0 (pinned) writes through a temporary file from `mkstemp`, which is
created 0600 whatever the umask, and renames it into place: every `.safetensors` file,
ours (`save_file`) and those diffusers/transformers write in `save_pretrained` or
`save_lora_weights`, came out private to its owner while the JSON beside it was 0644.
A group sharing a project directory then could not load the weights it was sent.

The fix is after the fact, once per save routine, on what that routine wrote: a file
that is exactly 0600 gets the mode a plain `open()` would have given it, 0666 minus the
umask. Files with any other mode were made on purpose (an executable, a read-only
copy) and are left alone; so are files of other owners, which we could not change.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

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
