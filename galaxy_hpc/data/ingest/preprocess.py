"""Centre-crop to a square and resize to `size`, so that galaxies stay centred.

The crop is the central min(H, W) square. When the image is resampled anyway, its
edges sit exactly at (W - side) / 2 (a half-pixel offset is honoured by the
resampler); when no resampling is needed (side == size) whole pixels are copied and
an odd margin is cut on the floor side, so such images pass through bit for bit.

uint8 images (JPEG, PNG, uint8 arrays) become 3-channel RGB (grey replicated,
alpha dropped, 16-bit grey scaled to 8 bits, unless it uses so little of its range that
nearly nothing would be left: MIN_DEEP_TOP) and are resized with PIL's Lanczos
filter. With `draft`, a JPEG at least twice the crop size is first decoded at a
reduced scale by libjpeg (DCT scaling, 1/2 to 1/8), several times faster, then
resized with Lanczos from there.

float images (FITS, float arrays) are resampled by exact pixel-area overlap:
each output pixel sums every input pixel times the fraction of that input pixel it
covers, so the total flux of the cropped square is kept (flux="total"; values are
flux per output pixel); flux="surface_brightness" divides by the number of input
pixels per output pixel, keeping the mean (flux per input pixel). This is a box
filter, anti-aliased when shrinking and piecewise constant when enlarging. NaN
pixels are left out of the sums and any output pixel that overlaps one is NaN.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from galaxy_hpc.data.ingest.records import RejectError

if TYPE_CHECKING:
    from galaxy_hpc.data.ingest.config import IngestConfig
    from galaxy_hpc.data.ingest.records import Decoded, Listing

_WEIGHT_EPS = 1e-9  # overlaps below this are float noise at pixel edges
# A 16-bit grey image whose largest value is below this keeps fewer than 16 grey levels
# once scaled to 8 bits (value >> 8): a pixel_type reject, not a black picture.
MIN_DEEP_TOP = 4096


def _rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16") or img.mode == "I":
        values = np.asarray(img, dtype=np.int64)
        top = int(values.max()) if values.size else 0
        if top < MIN_DEEP_TOP:
            # Raw counts (a camera's, a survey's) use a small part of the 16 bits: the
            # top byte alone, all an 8-bit picture keeps, is black or nearly.
            raise RejectError("pixel_type", f"a deep (PIL mode {img.mode}) image whose values "
                                            f"reach only {top}: as an 8-bit picture it keeps "
                                            f"{(top >> 8) + 1} grey level(s); ingest such "
                                            "images as flux (FITS or float TIFF)")
        grey = np.clip(values, 0, None) >> 8  # 16-bit grey -> 8 bits
        return Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode == "F":
        # Float pixels (a TIFF of flux) are measurements, not 0-255 levels: clipped to
        # 8 bits they came out black. A folder of them ingests as flux (folder.py).
        raise RejectError("pixel_type", f"a float image (PIL mode F, {img.size[0]}x"
                                        f"{img.size[1]}) where the store holds 8-bit pictures; "
                                        "ingest float images apart, as flux")
    return img.convert("RGB")  # L, LA, P, RGBA, CMYK, YCbCr ...: alpha is dropped


def uint8_image(img: Image.Image, size: int, *, draft: bool = True) -> tuple[np.ndarray, int]:
    """(3, size, size) uint8 and the crop side in source pixels, from an opened PIL image."""
    width, height = img.size
    side = min(width, height)
    if side < 1:
        raise RejectError("wrong_shape", f"image is {width}x{height}")
    if draft and img.format == "JPEG" and side >= 2 * size:
        scale = size / side
        img.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
    img = _rgb(img)
    w, h = img.size
    s = min(w, h)
    if s == size:
        left, top = (w - s) // 2, (h - s) // 2
        out = img.crop((left, top, left + s, top + s)) if (w, h) != (s, s) else img
    else:
        box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
        out = img.resize((size, size), Image.Resampling.LANCZOS, box=box)
    array = np.asarray(out, dtype=np.uint8)
    return np.ascontiguousarray(array.transpose(2, 0, 1)), side


def uint8_array(array: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """(C, H, W) uint8 with C in 1, 3, 4 -> (3, size, size) RGB, through PIL as files are."""
    channels = array.shape[0]
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    if array.ndim != 3 or channels not in modes:
        raise RejectError("wrong_shape", f"uint8 array of shape {array.shape}: need 1, 3 or 4 "
                                         f"channels first")
    hwc = np.ascontiguousarray(array.transpose(1, 2, 0))
    img = Image.fromarray(hwc[:, :, 0] if channels == 1 else hwc, modes[channels])
    return uint8_image(img, size, draft=False)


def area_weights(n_in: int, offset: float, span: float, n_out: int) -> np.ndarray:
    """(n_out, n_in) overlap of output pixel j = [offset + j*span/n_out, ...) with input
    pixel i = [i, i+1). Each input pixel inside the span has weights summing to 1."""
    edges = offset + np.arange(n_out + 1) * (span / n_out)
    pixels = np.arange(n_in)
    overlap = np.minimum(edges[1:, None], pixels[None, :] + 1) - np.maximum(
        edges[:-1, None], pixels[None, :])
    overlap[overlap < _WEIGHT_EPS] = 0.0
    return overlap


def float_image(
    data: np.ndarray, size: int, *, channels: int, flux: str = "total"
) -> tuple[np.ndarray, int]:
    """(channels, size, size) float32 and the crop side from (C, H, W) or (H, W) flux."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or min(data.shape) < 1:
        raise RejectError("wrong_shape", f"data of shape {data.shape}: need (y, x) or "
                                         f"(bands, y, x)")
    if data.shape[0] != channels:
        raise RejectError("band_count", f"{data.shape[0]} band(s), the store has {channels}")
    data = data.astype(np.float64, copy=False)
    finite = np.isfinite(data)
    if not finite.any():
        raise RejectError("all_nan", f"none of the {data.size} pixels is finite")
    _, height, width = data.shape
    side = min(height, width)
    if side == size:
        top, left = (height - side) // 2, (width - side) // 2
        return data[:, top:top + side, left:left + side].astype(np.float32), side
    rows = area_weights(height, (height - side) / 2, side, size)
    cols = area_weights(width, (width - side) / 2, side, size)
    out = np.einsum("yi,cij,xj->cyx", rows, np.where(finite, data, 0.0), cols, optimize=True)
    if not finite.all():
        holes = np.einsum("yi,cij,xj->cyx", rows, (~finite).astype(np.float64), cols,
                          optimize=True)
        out[holes > 0] = np.nan
    if flux == "surface_brightness":
        out *= (size / side) ** 2
    return out.astype(np.float32), side


class ImageFileReader:
    """Decodes a listing whose sources are image files (JPEG, PNG, ...) one at a time: the
    reader of every source kind that points at images and keeps its other columns in the
    listing (a JSONL manifest, a vote table)."""

    def __init__(self, cfg: "IngestConfig", listing: "Listing") -> None:
        self.cfg = cfg
        self.listing = listing

    def decode(self, index: int) -> "Decoded":
        from galaxy_hpc.data.ingest.records import Decoded

        with Image.open(self.listing.sources[index]) as img:
            image, side = uint8_image(img, self.cfg.size, draft=self.cfg.jpeg_draft)
        return Decoded(image, side)
