"""Pictures and files of one store item: PNG (full size or a thumbnail), a FITS cutout of
the image as stored (flux stays flux), and the item's row as a one-row FITS table with
units, as `galaxy-hpc generate` writes catalogs."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from galaxy_hpc.models.display import to_display, to_rgb


def shown(images: np.ndarray, stretch: Any, band: int | None = None) -> np.ndarray:
    """(N, C, H, W) store images -> (N, 3, H, W) uint8: RGB as is, flux through the store's
    stretch (the three reddest bands as RGB), or one band as grey."""
    if band is None:
        return to_rgb(images, stretch)
    if not 0 <= band < images.shape[1]:
        raise ValueError(f"band {band}: the images have bands 0..{images.shape[1] - 1}")
    if images.dtype == np.uint8:
        grey = images[:, band:band + 1]
    else:
        grey = to_display(np.asarray(stretch.forward(images.astype(np.float32)))[:, band:band + 1],
                          flux=True)
    return np.repeat(grey, 3, axis=1)


def png_bytes(rgb: np.ndarray, *, side: int | None = None) -> bytes:
    """One (3, H, W) uint8 image as PNG; `side`: scaled so its longer side is `side`."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(rgb.transpose(1, 2, 0)))
    if side is not None and side != max(picture.size):
        scale = side / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.LANCZOS if scale < 1 else Image.NEAREST)
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def grid_png(rgb: np.ndarray) -> bytes:
    """(N, 3, H, W) uint8 side by side in one PNG row."""
    return png_bytes(np.concatenate(list(rgb), axis=2))


def fits_cutout(image: np.ndarray, row: dict[str, Any], *, store: str) -> bytes:
    """The image as stored, in a primary HDU; the row (JSON) and its id in the header."""
    from astropy.io import fits

    hdu = fits.PrimaryHDU(np.asarray(image))
    hdu.header["EXTNAME"] = "OBJECT"
    hdu.header["STORE"] = store[-68:]
    hdu.header["INDEX"] = int(row["index"])
    hdu.header["ROWJSON"] = json.dumps(row, sort_keys=True, default=str)[:4000]
    out = io.BytesIO()
    hdu.writeto(out)
    return out.getvalue()


def fits_row(row: dict[str, Any], info: dict[str, dict[str, str]]) -> bytes:
    """The item's columns as a one-row FITS table, units (TUNITn) and descriptions."""
    from astropy.io import fits
    from astropy.table import Table

    table = Table()
    for name, value in row.items():
        table[name] = [value]
    hdu = fits.table_to_hdu(table)
    # Units as the store has them (nanomaggy, log(solMass)): TUNITn as written, the way
    # catalogs' tables carry them, not through astropy's unit parser (which drops them).
    for k, name in enumerate(table.colnames, start=1):
        unit = info.get(name, {}).get("unit")
        text = info.get(name, {}).get("description")
        if unit:
            hdu.header[f"TUNIT{k}"] = unit
        if text:
            hdu.header[f"TCOMM{k}"] = text[:68]
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out)
    return out.getvalue()
