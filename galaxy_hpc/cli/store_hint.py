"""What to do with a path that was given as a store and is not one.

A new user's first command is often `galaxy-hpc store info galaxy10.h5` or a training
config whose `data.store` names their folder of JPEGs: something that holds galaxies but
is not a store. hpc.store says what the path is (`NotAStore.what`); this says which
`ingest` makes a store of it, since only the domain knows what ingest reads.
"""

from __future__ import annotations

from pathlib import Path

# What `galaxy-hpc ingest` recognises by name (data/ingest/sources.py: detect_kind).
INGESTIBLE_ENDINGS = (".h5", ".hdf5", ".npy", ".jsonl", ".fits", ".fit", ".fts", ".fits.gz",
                      ".fit.gz", ".fts.gz")


def not_a_store_hint(path: Path | None, what: str) -> str:
    """' — to make a store of it: galaxy-hpc ingest ...' or '' where ingest cannot help."""
    if path is None:
        return ""
    ingestible = what in ("hdf5", "directory") or (
        what == "file" and path.name.lower().endswith(INGESTIBLE_ENDINGS)
    )
    if not ingestible:
        return ""
    name = path.name
    for ending in sorted(INGESTIBLE_ENDINGS, key=len, reverse=True):
        if name.lower().endswith(ending):
            name = name[: -len(ending)]
            break
    target = path.with_name(f"{name.rstrip('/') or 'galaxies'}.zarr")
    return (f"; if it holds galaxy images, make a store of it first: galaxy-hpc ingest "
            f"{path} --out {target} (docs/ingest.md)")
