"""What a file's name says it holds: the endings every reader of this package accepts.

One list each, so that `ingest`, the vote tables, the condition rows of `generate` and
the command line's hints agree on what counts as a CSV, FITS or HDF5 file (they had
three copies of the FITS endings and two of the CSV ones).
"""

from __future__ import annotations

from pathlib import Path

CSV_ENDINGS = (".csv", ".csv.gz")
# .fz: fpack's tile-compressed FITS (DES, HSC and DECam cutouts), read by astropy as is.
FITS_ENDINGS = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz",
                ".fit.fz", ".fts.fz")
HDF5_ENDINGS = (".h5", ".hdf5")
# What `galaxy-hpc ingest` recognises by name (data/ingest/sources.py: detect_kind).
INGESTIBLE_ENDINGS = (*HDF5_ENDINGS, ".npy", ".jsonl", *FITS_ENDINGS)


def strip_ending(path: str | Path, endings: tuple[str, ...]) -> str:
    """The file name without the longest of `endings` it has: `a.fits.gz` -> `a`."""
    name = Path(path).name
    for ending in sorted(endings, key=len, reverse=True):
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return name
