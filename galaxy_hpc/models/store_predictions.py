"""Vote fractions of a store's galaxies from any VotePredictor, batch by batch.

Used by `galaxy-hpc predict` (a rank's share of the store) and by the DINOv2 family's
held-out evaluation (chosen indices). Images are read in store order, stretched into
the predictor's training space and resized to its `image_size` when the store's side
differs. A predictor that carries the stretch it was trained with (`.stretch`, as the
DINOv2 one does) gets exactly that map; otherwise the store's default (the one
StoreDataset applies), which for uint8 stores is the same for every store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from galaxy_hpc.data.gz2 import NUM_ANSWERS
from hpc.store import Store


def predictor_stretch(predictor: Any, store: Store) -> Any:
    from galaxy_hpc.data.stretch import stretch_for_store

    own = getattr(predictor, "stretch", None)
    return stretch_for_store(store, own)


def _model_space(images: np.ndarray, stretch: Any, size: int) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(stretch.forward(images), dtype=np.float32))
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear",
                          antialias=x.shape[-1] > size, align_corners=False)
    return x


def predict_store(predictor: Any, store: Store, *, indices: np.ndarray | None = None,
                  start: int = 0, stop: int | None = None, batch_size: int = 128,
                  progress: Callable[[int], None] | None = None) -> np.ndarray:
    """(n, 37) float32 per-question fractions of items `indices` (any order, read in that
    order) or of the range [start, stop). `progress(k)` is called after each batch of k."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stretch = predictor_stretch(predictor, store)
    size = int(predictor.image_size)
    if indices is not None:
        wanted = np.asarray(indices, dtype=np.int64)
        chunks = [wanted[k:k + batch_size] for k in range(0, len(wanted), batch_size)]
        read = store.read_images_at
    else:
        stop = len(store) if stop is None else stop
        if not 0 <= start <= stop <= len(store):
            raise ValueError(f"range [{start}, {stop}) is outside the store's {len(store)} "
                             "items")
        chunks = [(a, min(a + batch_size, stop)) for a in range(start, stop, batch_size)]
        read = lambda bounds: store.read_images(*bounds)  # noqa: E731
    parts = [np.empty((0, NUM_ANSWERS), dtype=np.float32)]
    for chunk in chunks:
        fractions = predictor.predict_fractions(_model_space(read(chunk), stretch, size))
        parts.append(fractions.detach().float().cpu().numpy())
        if progress is not None:
            progress(len(parts[-1]))
    return np.concatenate(parts)
