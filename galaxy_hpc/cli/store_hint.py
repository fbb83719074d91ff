"""What to do with a path that was given as a store and is not one.

A new user's first command is often `galaxy-hpc store info galaxy10.h5` or a training
config whose `data.store` names their folder of JPEGs: something that holds galaxies but
is not a store. hpc.store says what the path is (`NotAStore.what`); this says which
`ingest` makes a store of it, since only the domain knows what ingest reads.
"""

from __future__ import annotations

from pathlib import Path

from galaxy_hpc.data.file_names import INGESTIBLE_ENDINGS, strip_ending


def not_a_store_hint(path: Path | None, what: str) -> str:
    """'; if it holds galaxy images, ... galaxy-hpc ingest ...', or '' where ingest cannot
    help (a text file, another program's zarr group)."""
    if path is None:
        return ""
    ingestible = what in ("hdf5", "directory") or (
        what == "file" and path.name.lower().endswith(INGESTIBLE_ENDINGS)
    )
    if not ingestible:
        return ""
    if path.name in ("", ".", ".."):  # `store info .`: name the store after the folder
        path = path.resolve()
    target = path.with_name(f"{strip_ending(path, INGESTIBLE_ENDINGS)}.zarr")
    return (f"; if it holds galaxy images, make a store of it first: galaxy-hpc ingest "
            f"{path} --out {target} (docs/ingest.md)")
