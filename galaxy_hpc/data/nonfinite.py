"""Images with NaN or infinite pixels: named wherever they are met, never passed on silently.

FITS cutouts carry NaN where a mask, a chip gap or the survey's edge was, and the flux
resampling of ingest keeps a NaN wherever an output pixel overlaps one. Ingest keeps
such an image by default and records how many of its values are not finite, in the
store's `nonfinite_pixels` column and in `X.notes.csv` beside the store; the ingest
setting `nonfinite` chooses instead `zero` (set them to 0, still counted) or `reject`
(set the image aside with the other rejects). Images with no finite pixel at all are
always rejected (`all_nan`).

Nothing downstream can use such pixels: a NaN propagates through the stretch into
every loss and feature it touches, and a cast to uint8 for a feature extractor turns
it into an arbitrary grey. So training refuses a store with non-finite pixels (from the
column up front; while reading for stores without it) and evaluation stops at the first
read that holds one, on the real side as on the generated one; both name the store and
the first items, and say how to fix the store. Training does not fill or skip them
itself: a fill value is a choice about the data (0 is the sky of a background-subtracted
cutout, not of every image) made once, visibly, where the store is made.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from typing import Any

import numpy as np

COLUMN = "nonfinite_pixels"
MODES = ("keep", "zero", "reject")
NUM_NAMED = 5  # items named in one message


class NonFinitePixels(ValueError):
    """A store's images hold NaN or infinite pixels where finite ones are needed (one
    line for the CLI)."""


def count(image: np.ndarray) -> int:
    """NaN and infinite values in one image (0 for integer images)."""
    image = np.asarray(image)
    if image.dtype.kind != "f":
        return 0
    return int(image.size - np.count_nonzero(np.isfinite(image)))


def bad_items(images: Sequence[np.ndarray] | np.ndarray) -> list[int]:
    """Positions of the images (a batch or a list of per-item arrays) that hold a NaN or
    an infinity. One sum per image first, exact count only where it is not finite: on
    the training read path of a float store this costs about a sixth of the asinh
    stretch itself (3 x 128 x 128 float32: ~26 against ~160 us an image on one busy
    core, 2026-12), where a mask over every pixel cost about a third."""
    if len(images) == 0 or np.asarray(images[0]).dtype.kind != "f":
        return []
    bad = []
    with np.errstate(over="ignore", invalid="ignore"):  # a sum may overflow; count decides
        for k, image in enumerate(images):
            if not math.isfinite(float(np.add.reduce(image, axis=None))) and count(image):
                bad.append(k)
    return bad


def name_items(store: Any, indices: Sequence[int], total: int | None = None) -> str:
    """'items 3 (id obj3), 7 (id obj7) and 10 more' for the store's item indices."""
    indices = [int(i) for i in indices]
    total = len(indices) if total is None else total
    shown = indices[:NUM_NAMED]
    ids = None
    if store.spec.columns.get("id") == "str" and shown:
        try:
            ids = [str(store.read_column("id")[i]) for i in shown]
        except Exception:  # noqa: BLE001 - the message must not fail on a damaged column
            ids = None
    named = [f"{i} (id {ids[k]})" if ids else str(i) for k, i in enumerate(shown)]
    more = f" and {total - len(shown)} more" if total > len(shown) else ""
    return f"item{'s' * (total > 1)} {', '.join(named)}{more}"


def fix_for(store: Any) -> str:
    """How to get a store without them, by where the store came from."""
    attrs = getattr(store, "attrs", {}) or {}
    if "ingest_fingerprint" in attrs or "source_kind" in attrs:
        path = shlex.quote(str(store.path))
        return ("re-ingest it with nonfinite=zero (set them to 0, still counted) or "
                "nonfinite=reject (set those images aside), adding --overwrite; or keep the "
                f"others: galaxy-hpc select {path} --where \"{COLUMN} == 0\" --out NEW_STORE")
    if "generate" in attrs:
        return "the model produced them: regenerate the catalog (or drop those objects)"
    return "replace or drop those items in the store"


def refuse(store: Any, indices: Sequence[int], *, use: str, total: int | None = None,
           ) -> NonFinitePixels:
    """The error for `use` ('training', 'FID', ...) meeting these items of `store`."""
    total = len(indices) if total is None else total
    return NonFinitePixels(
        f"{store.path}: {name_items(store, indices, total)} hold{'s' * (total == 1)} NaN or "
        f"infinite pixels; {use} needs finite pixels: {fix_for(store)}")


def check_column(store: Any, *, use: str) -> None:
    """Refuse up front when the store's `nonfinite_pixels` column (ingest writes it for
    float images) counts any; stores without the column are checked as they are read."""
    if store.spec.image_dtype == "uint8" or store.spec.columns.get(COLUMN) is None:
        return
    counts = np.asarray(store.read_column(COLUMN))
    bad = np.flatnonzero(counts > 0)
    if len(bad):
        raise refuse(store, bad, use=use)


def check_read(store: Any, images: Sequence[np.ndarray] | np.ndarray,
               indices: Sequence[int], *, use: str) -> None:
    """Refuse when any of these images (store items `indices`, in order) is not finite."""
    bad = bad_items(images)
    if bad:
        raise refuse(store, [indices[k] for k in bad], use=use)
