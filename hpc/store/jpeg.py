"""Images kept as the JPEG files they came from (compression "jpeg-source"), and decoding them.

Why: for JPEG-sourced uint8 images no lossless codec stores less than 3.6x the JPEG
folder's bytes (the JPEG's quantisation noise is what lossless coding cannot drop);
keeping the source files is 1.00x (hpc/store/README.md, "Choosing the default").

Writing: a writer of such a store is handed each item's file bytes, not pixels. It
decodes them with PIL - what a plain-zarr user of the store does - to check that they are
a baseline or progressive RGB JPEG of the store's shape, and computes the item digests
over those pixels: the checksum is that of a pixel store of the same images, and
`store verify` compares what the reader decodes with what PIL decoded at ingest.

Reading: one `torchvision.io.decode_jpeg` call on the list of a slice's files (libjpeg-
turbo on the CPU; nvJPEG with device="cuda"). On the CPU it gave PIL's pixels for 300 of
300 GalaxySD files; a decoder that differs (another libjpeg, nvJPEG's IDCT) fails
`store verify`, which always decodes on the CPU.
"""

from __future__ import annotations

import io
import warnings
from typing import Any, Sequence

import numpy as np

from hpc.store.spec import StoreSpec


def as_blobs(images: Any, where: str) -> np.ndarray:
    """An object array of `bytes`, one JPEG file per item; ValueError naming the item."""
    if isinstance(images, np.ndarray) and images.dtype != object:
        raise ValueError(
            f"{where}: this store keeps JPEG files (compression 'jpeg-source'): give each "
            f"item's file bytes, not a {images.dtype} pixel array"
        )
    blobs = np.empty(len(images), dtype=object)
    for index, blob in enumerate(images):
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise ValueError(
                f"{where}: item {index} is {type(blob).__name__}, expected the bytes of a "
                "JPEG file"
            )
        blobs[index] = bytes(blob)
    return blobs


def pil_pixels(spec: StoreSpec, blobs: np.ndarray, where: str) -> np.ndarray:
    """(count, 3, H, W) uint8 as PIL decodes each file; ValueError naming the item that is
    not an RGB JPEG of the store's shape (anything else would need a conversion, and the
    file kept would not be the pixels stored)."""
    from PIL import Image

    _, height, width = spec.image_shape
    out = np.empty((len(blobs), *spec.image_shape), dtype=np.uint8)
    for index, blob in enumerate(blobs):
        try:
            with Image.open(io.BytesIO(blob)) as img:
                fmt, mode, size = img.format, img.mode, img.size
                if fmt == "JPEG" and mode == "RGB" and size == (width, height):
                    out[index] = np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
        except Exception as error:  # noqa: BLE001 - PIL raises many kinds for bad files
            raise ValueError(f"{where}: item {index} is not a readable image ({error})") from None
        if (fmt, mode, size) != ("JPEG", "RGB", (width, height)):
            raise ValueError(
                f"{where}: item {index} is a {size[0]}x{size[1]} {mode} {fmt}; a jpeg-source "
                f"store keeps only {width}x{height} RGB JPEG files as they are"
            )
    return out


def decode_jpegs(blobs: Sequence[bytes], shape: tuple[int, ...],
                 device: str = "cpu") -> np.ndarray:
    """(count, *shape) uint8 from JPEG files, in one decode_jpeg call; ValueError (with
    `bad_items`, the positions that do not decode or have another shape) on failure."""
    if not len(blobs):
        return np.empty((0, *shape), dtype=np.uint8)
    # torchvision 0.29 warns on every call that its image codecs will move to torchcodec
    # (not installed here); they work, and a warning per shard slice buries real ones.
    # torch.frombuffer warns that bytes are read-only; decode_jpeg only reads them.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TorchVision are deprecated",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*not writable", category=UserWarning)
        return _decode(blobs, shape, device)


def _decode(blobs: Sequence[bytes], shape: tuple[int, ...], device: str) -> np.ndarray:
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    data = [torch.frombuffer(blob, dtype=torch.uint8) for blob in blobs]
    try:
        images = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
        bad = [k for k, image in enumerate(images) if tuple(image.shape) != tuple(shape)]
    except RuntimeError as error:
        bad, cause = [], error
        for k, one in enumerate(data):
            try:
                decode_jpeg(one, mode=ImageReadMode.RGB, device=device)
            except RuntimeError:
                bad.append(k)
        if not bad:  # no file is at fault (the device, memory): not damage
            raise
        raise JpegDecodeError(f"does not decode as JPEG ({' '.join(str(cause).split())[:120]})",
                              bad) from None
    if bad:
        raise JpegDecodeError(f"decodes to shape {tuple(images[bad[0]].shape)}, not {shape}",
                              bad)
    return torch.stack(images).cpu().numpy()


class JpegDecodeError(ValueError):
    """Some stored files do not decode to the store's images; `bad_items` are their
    positions in the list decoded."""

    def __init__(self, reason: str, bad_items: list[int]) -> None:
        super().__init__(reason)
        self.reason, self.bad_items = reason, bad_items


def coerce_jpeg_items(
    spec: StoreSpec, images: Any, columns: Any, expected_count: int | None = None,
    where: str = "items",
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """`coerce_items` for a jpeg-source store: (the files as an object array of bytes,
    their pixels as PIL decodes them, the columns)."""
    from hpc.store.items import coerce_columns

    blobs = as_blobs(images, where)
    if expected_count is not None and len(blobs) != expected_count:
        raise ValueError(f"{where}: expected {expected_count} images, got {len(blobs)}")
    pixels = pil_pixels(spec, blobs, where)
    return blobs, pixels, coerce_columns(spec, columns or {}, len(blobs), where)
