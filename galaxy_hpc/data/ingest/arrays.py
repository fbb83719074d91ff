"""Stacks of images in one array (an NPY file, an HDF5 dataset): which axis is the band.

Arrays come both ways round: galaxyCGAN saves [n, C, H, W] (PyTorch's order), Galaxy10
and most arrays written from PIL or matplotlib [n, H, W, C], and single-band stacks
[n, H, W]. Guessing wrong is silent and ruinous (a [n, 64, 64, 3] float stack read
channels-first is 64 "bands" of 64 x 3 pixel images), so `layout: auto` decides only
when the shape leaves no doubt, a band axis of at most MAX_BANDS entries that is
smaller than both image axes, and otherwise stops with the shape and the option to
set.
"""

from __future__ import annotations

import numpy as np

from galaxy_hpc.data.ingest.preprocess import float_image, uint8_array

LAYOUTS = ("auto", "channels_first", "channels_last")
MAX_BANDS = 16  # more bands than this on an axis: not a band axis, for `auto`


def stack_layout(shape: tuple[int, ...], layout: str, where: str, option: str
                 ) -> tuple[str, int]:
    """(resolved layout, bands) of an image stack of `shape`: "channels_first",
    "channels_last" or "single_band" ([n, H, W]). `option` names the setting in errors."""
    if layout not in LAYOUTS:
        raise ValueError(f"{option} must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if len(shape) == 3:
        if shape[0] == 0 or min(shape[1:]) < 1:
            raise ValueError(f"{where}: an empty image stack, shape {shape}")
        return "single_band", 1
    if len(shape) != 4 or shape[0] == 0 or min(shape[1:]) < 1:
        raise ValueError(f"{where}: expected a stack of images [n, C, H, W], [n, H, W, C] "
                         f"or [n, H, W], got shape {shape}")
    if layout != "auto":
        return layout, shape[1] if layout == "channels_first" else shape[3]
    first = shape[1] <= MAX_BANDS and shape[1] < min(shape[2], shape[3])
    last = shape[3] <= MAX_BANDS and shape[3] < min(shape[1], shape[2])
    if first != last:
        return ("channels_first", shape[1]) if first else ("channels_last", shape[3])
    raise ValueError(f"{where}: cannot tell which axis of shape {shape} holds the bands; "
                     f"set {option}=channels_first ([n, C, H, W]) or "
                     f"{option}=channels_last ([n, H, W, C])")


def bands_first(image: np.ndarray, layout: str) -> np.ndarray:
    """One image of a stack as (C, H, W)."""
    if layout == "single_band":
        return image[None]
    if layout == "channels_last":
        return image.transpose(2, 0, 1)
    return image


def preprocess_array(image: np.ndarray, *, uint8: bool, channels: int, size: int, flux: str
                     ) -> tuple[np.ndarray, int]:
    """A (C, H, W) image of a stack, centre-cropped and resized as files are: uint8 to RGB
    through PIL, anything else as float flux with `channels` bands."""
    if uint8:
        return uint8_array(np.ascontiguousarray(image), size)
    return float_image(image, size, channels=channels, flux=flux)


def is_uint8(dtype: np.dtype) -> bool:
    return np.dtype(dtype) == np.uint8


def check_uint8_bands(dtype: np.dtype, bands: int, where: str) -> None:
    """uint8 stacks become RGB as image files do: grey, RGB or RGBA only."""
    if is_uint8(dtype) and bands not in (1, 3, 4):
        raise ValueError(f"{where}: a uint8 stack of {bands} bands; uint8 images are read as "
                         f"grey, RGB or RGBA (1, 3 or 4 bands): store flux as float instead")
