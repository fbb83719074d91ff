"""One FITS file holding a stack of cutouts: [n, y, x] or [n, bands, y, x] in one image HDU.

A FITS image of 3 axes is read as one galaxy's bands (a g, r, z cube), which is what
cutout services write. A file of 200 stamps, [200, 32, 32], went the same way and came
out as one galaxy of 200 bands, exit 0. So a single FITS file whose image HDU has four
axes, or three with more planes than an image has bands (arrays.MAX_BANDS, the rule of
the array sources), is a stack: each plane (or [bands, y, x] block) is one record, with
id its row number ("0", "1", ...) and source FILE[row]; the listing's kind is
"fits_stack", whose Reader below reads the stamps. `fits.layout` says which axis
of a 4-axis stack holds the bands when the shape leaves doubt, as npy.layout does.

Such files often carry the stamps' catalog as a binary-table HDU of one row per stamp:
when a table HDU has exactly n rows, its numeric columns become the store's columns
(row k with stamp k); `catalog.table` joins any other catalog on the row numbers.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from galaxy_hpc.data.ingest.arrays import MAX_BANDS, bands_first, stack_layout
from galaxy_hpc.data.ingest.config import IngestConfig
from galaxy_hpc.data.ingest.preprocess import float_image
from galaxy_hpc.data.ingest.records import Decoded, Listing, RejectError, safe_column
from galaxy_hpc.data.ingest.table import table_column


def stack_shape(path: str, cfg: IngestConfig) -> tuple[int, tuple[int, ...]] | None:
    """(HDU index, numpy shape) when the file's image HDU is a stack of cutouts, else None
    (one galaxy, or not readable here: the per-file reader says why)."""
    from galaxy_hpc.data.ingest.fits import image_hdu

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, lazy_load_hdus=True) as hdul:
                hdu = image_hdu(hdul, cfg.fits.hdu)
                naxis = int(hdu.header.get("NAXIS", 0))
                shape = tuple(int(hdu.header[f"NAXIS{k}"]) for k in range(naxis, 0, -1))
                index = next(k for k, h in enumerate(hdul) if h is hdu)
    except Exception:  # noqa: BLE001 - an unreadable file is the per-file reader's to reject
        return None
    if len(shape) == 4 or (len(shape) == 3 and shape[0] > MAX_BANDS):
        return index, shape
    return None


def list_stack(cfg: IngestConfig, path: str, hdu: int, shape: tuple[int, ...]) -> Listing:
    if cfg.fits.header_keys:
        raise ValueError(f"{path}: a stack of {shape[0]} cutouts, whose header describes the "
                         "whole stack, not each galaxy: fits.header_keys does not apply (a "
                         "table HDU of one row per cutout, or catalog.table, gives columns)")
    layout, channels = stack_layout(shape, cfg.fits.layout, path, "fits.layout")
    count = shape[0]
    column_types, columns, table_hdu = _stamp_table(path, count)
    notes = {"stack": {"hdu": hdu, "shape": list(shape), "layout": layout,
                       "table_hdu": table_hdu}, "flux": cfg.flux}
    return Listing(kind="fits_stack", ids=[str(k) for k in range(count)],
                   sources=[f"{path}[{k}]" for k in range(count)], dtype="float32",
                   channels=channels, column_types=column_types, columns=columns, notes=notes,
                   inputs=[path], payload={"path": path, "hdu": hdu, "layout": layout})


def _stamp_table(path: str, count: int) -> tuple[dict[str, str], dict[str, np.ndarray],
                                                  int | None]:
    """The numeric columns of the first table HDU with one row per stamp."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a truncated stack: its stamps are rejected each
        with fits.open(path, lazy_load_hdus=True) as hdul:
            tables = [k for k, h in enumerate(hdul) if isinstance(h, fits.BinTableHDU)
                      and h.header.get("NAXIS2") == count]
    if not tables:
        return {}, {}, None
    table = Table.read(path, hdu=tables[0])
    types, values = {}, {}
    for name in table.colnames:
        found = table_column(table, name)
        if found is not None and np.ndim(found[0]) == 1:
            store_name = safe_column(name, f"{path} table HDU {tables[0]}")
            values[store_name], types[store_name] = found
    return types, values, tables[0]


class Reader:
    """Reads stamp k of the stack (memory-mapped: each rank touches its own rows)."""

    def __init__(self, cfg: IngestConfig, listing: Listing) -> None:
        self.cfg, self.listing = cfg, listing
        self._hdul: Any = None

    def decode(self, index: int) -> Decoded:
        payload = self.listing.payload
        if self._hdul is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # truncation: told per stamp, below
                self._hdul = fits.open(Path(payload["path"]), memmap=True)
        hdu = self._hdul[payload["hdu"]]
        try:
            data = np.asarray(hdu.section[index], dtype=np.float64)
        except (TypeError, ValueError, OSError) as error:
            info = hdu.fileinfo()
            size = Path(payload["path"]).stat().st_size
            if size < info["datLoc"] + info["datSpan"]:
                raise RejectError("truncated", f"the file ends at byte {size}, before the "
                                               f"data of stamp {index}") from None
            raise RejectError("unreadable", f"{type(error).__name__}: {error}") from None
        image, side = float_image(bands_first(data, payload["layout"]), self.cfg.size,
                                  channels=self.listing.channels, flux=self.cfg.flux)
        return Decoded(image, side)
