"""One error for a store that lost or changed bytes, and the switches of the read checks.

A store read that meets a missing, empty, truncated or altered file must never return
data (zarr reads a missing chunk as its fill value: black images, 0.0 columns, with exit
status 0). Every check in the backends raises `StoreDamaged`, a ValueError, so that the
command line prints one line naming the store, the file and the items it holds, and
`store verify` can list what is damaged item by item.
"""

from __future__ import annotations

import os
from pathlib import Path

READ_CHECKS_ENV = "HPC_STORE_READ_CHECKS"  # "0": read what is left of a damaged store
CHUNK_CHECKSUMS_ENV = "HPC_STORE_CHUNK_CHECKSUMS"  # "0": write stores as before (benchmarks)


class StoreDamaged(ValueError):
    """A store file is missing, empty, truncated, altered or another store's.

    `store`, `file` (relative to the store's folder) and `items` ([start, stop)) say
    where; the message says it all on one line. Constructible from a message alone, as
    torch's DataLoader re-raises a worker's exception that way.
    """

    def __init__(
        self,
        message: str,
        *,
        store: Path | None = None,
        file: str | None = None,
        items: tuple[int, int] | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(_unwrapped(message))
        self.store, self.file, self.items, self.reason = store, file, items, reason


def _unwrapped(message: str) -> str:
    """torch's DataLoader re-raises a worker's error as "Caught X in DataLoader worker
    process 0.\nOriginal Traceback ...\n<module>.X: <message>"; keep the one line."""
    if not message.startswith(f"Caught {StoreDamaged.__name__} ") or "\n" not in message:
        return message
    last = message.rstrip().splitlines()[-1]
    prefix = f"{StoreDamaged.__module__}.{StoreDamaged.__qualname__}: "
    where = message.splitlines()[0].removeprefix(f"Caught {StoreDamaged.__name__} ").rstrip(".")
    return f"{last.removeprefix(prefix)} ({where})" if last.startswith(prefix) else message


def damaged(
    store: Path, file: str, items: tuple[int, int] | None, reason: str, advice: str | None = None
) -> StoreDamaged:
    where = f" ({describe_items(*items)})" if items else ""
    advice = advice or (
        f"restore the file or rewrite the store (galaxy-hpc store verify {store} "
        "lists every damaged item)"
    )
    return StoreDamaged(
        f"{store} is damaged: {file}{where} {reason}; {advice}",
        store=store,
        file=file,
        items=items,
        reason=reason,
    )


def describe_items(start: int, stop: int) -> str:
    """'item 5' or 'items 4..7' ([start, stop))."""
    return f"item {start}" if stop - start == 1 else f"items {start}..{stop - 1}"


def read_checks_enabled() -> bool:
    """On unless $HPC_STORE_READ_CHECKS=0: the way to read what is left of a damaged
    store, and to measure what the checks cost (benchmarks/bench_data.py)."""
    return os.environ.get(READ_CHECKS_ENV, "1") != "0"


def chunk_checksums_enabled() -> bool:
    """New stores checksum every chunk (zarr crc32c, HDF5 fletcher32) unless
    $HPC_STORE_CHUNK_CHECKSUMS=0; only benchmarks turn it off, to measure its cost."""
    return os.environ.get(CHUNK_CHECKSUMS_ENV, "1") != "0"


def short_error(error: BaseException, limit: int = 160) -> str:
    """An underlying library's error on one line (zarrs and HDF5 messages run long)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
