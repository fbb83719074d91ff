"""Content checksums that do not depend on how a store was laid out or written.

Each item gets a sha256 of its image bytes (C order, little-endian) followed by its column
values in sorted column-name order, each canonically encoded: str as an 8-byte
little-endian byte length + UTF-8, numbers as little-endian fixed width, bool as one byte.
The store checksum is a sha256 over the spec's content part (shape, dtype, columns - not
shard size, backend or codec), the item count and all item digests in order. Writers
compute item digests as they write, so finalising a store reads only small records.
"""

from __future__ import annotations

import hashlib
import json
from typing import Mapping

import numpy as np

from hpc.store.spec import StoreSpec

DIGEST_SIZE = 32
PREFIX = "sha256:"
_WIRE = {"float64": "<f8", "float32": "<f4", "int64": "<i8", "bool": "u1"}


def item_digests(
    spec: StoreSpec, images: np.ndarray, columns: Mapping[str, np.ndarray]
) -> np.ndarray:
    """(count, 32) uint8 digests of items already passed through `coerce_items`."""
    count = images.shape[0]
    wire_images = np.ascontiguousarray(images, dtype=np.dtype(spec.image_dtype).newbyteorder("<"))
    row_parts: list[list[bytes]] = [[] for _ in range(count)]
    for name in sorted(spec.columns):
        dtype, values = spec.columns[name], columns[name]
        if dtype == "str":
            encoded = [v.encode("utf-8") for v in values]
            encoded = [len(b).to_bytes(8, "little") + b for b in encoded]
        else:
            raw = np.ascontiguousarray(values.astype(_WIRE[dtype]))
            width = raw.dtype.itemsize
            flat = raw.tobytes()
            encoded = [flat[i * width : (i + 1) * width] for i in range(count)]
        for row, chunk in zip(row_parts, encoded, strict=True):
            row.append(chunk)
    out = np.empty((count, DIGEST_SIZE), dtype=np.uint8)
    for index in range(count):
        hasher = hashlib.sha256(memoryview(wire_images[index]).cast("B"))
        hasher.update(b"".join(row_parts[index]))
        out[index] = np.frombuffer(hasher.digest(), dtype=np.uint8)
    return out


def store_checksum(spec: StoreSpec, digests: np.ndarray) -> str:
    """'sha256:<hex>' over the content spec, the item count and every item digest in order."""
    assert digests.ndim == 2 and digests.shape[1] == DIGEST_SIZE, digests.shape
    hasher = hashlib.sha256(b"hpc.store checksum v1\n")
    hasher.update(json.dumps(spec.content_dict(), sort_keys=True, separators=(",", ":")).encode())
    hasher.update(b"\n" + int(digests.shape[0]).to_bytes(8, "little"))
    hasher.update(np.ascontiguousarray(digests, dtype=np.uint8).tobytes())
    return PREFIX + hasher.hexdigest()
