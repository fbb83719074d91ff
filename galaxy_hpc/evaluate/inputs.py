"""How store images reach a feature extractor: uint8 RGB, as torch-fidelity's extractors take.

torch-fidelity's extractors take (N, 3, H, W) uint8 tensors and resize them themselves
(Inception to 299 x 299, DINOv2 and CLIP to 224 x 224, with TensorFlow-1-compatible
bilinear interpolation), so a store's images go in at their own size:

- uint8 RGB stores (JPEG/PNG ingest, synth's colour composites) go in unchanged;
- float32 flux stores (FITS, synth --float) go through the stretch training uses
  (galaxy_hpc.data.stretch: asinh, estimated from the real store's sample unless a
  stretch file is given) to [-1, 1], then y -> round((y + 1) * 127.5) clipped to 0..255;
  three bands are shown as R, G, B (by default the reddest, i.e. last of three, as R,
  like synth's composites; with two or more than three bands the reddest, the middle
  and the bluest); a single band is repeated as grey.

Both stores of a comparison go through the same map, or the comparison says why it
cannot: a uint8 store against a float one is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.data.stretch import Stretch, Uint8Stretch, stretch_for_store, stretch_from_dict
from hpc.store import Store


def load_stretch(path: str | None) -> Stretch | None:
    """A stretch from a JSON file (the dict `Stretch.to_dict()` writes), or None."""
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"stretch file {path} does not exist")
    try:
        state = json.loads(file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a stretch JSON ({error})") from None
    if isinstance(state, Mapping) and "stretch" in state:  # a model folder's metadata
        state = state["stretch"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a JSON object with 'kind', got {type(state).__name__}")
    return stretch_from_dict(state)


@dataclass(frozen=True)
class ExtractorInput:
    """The map from store pixels to the extractor's uint8 RGB, identical for both stores."""

    dtype: str  # the stores' image dtype
    num_bands: int
    stretch: Stretch
    rgb_bands: tuple[int, int, int]
    stretch_source: str  # where the stretch came from, for the output

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "num_bands": self.num_bands,
                "stretch": self.stretch.to_dict(), "rgb_bands": list(self.rgb_bands),
                "stretch_source": self.stretch_source}

    def describe(self) -> str:
        if self.dtype == "uint8" and self.rgb_bands == (0, 1, 2):
            return "uint8 RGB images fed unchanged"
        bands = ("grey (band 0 repeated)" if len(set(self.rgb_bands)) == 1
                 else f"bands {list(self.rgb_bands)} as R, G, B")
        if isinstance(self.stretch, Uint8Stretch):
            return f"uint8 images, {bands}"
        return (f"float32 flux -> asinh stretch ({self.stretch_source}) -> [-1, 1] -> uint8 "
                f"0..255 (clipped), {bands}")

    def to_uint8(self, images: np.ndarray) -> torch.Tensor:
        """(N, C, H, W) store images -> (N, 3, H, W) uint8 tensor."""
        images = np.asarray(images)
        if images.dtype == np.uint8:
            return torch.from_numpy(np.ascontiguousarray(images[:, list(self.rgb_bands)]))
        # The stretch is per band, in the store's band order: stretch first, then pick.
        y = np.asarray(self.stretch.forward(images.astype(np.float32)), dtype=np.float64)
        u8 = np.clip(np.rint((y[:, list(self.rgb_bands)] + 1.0) * 127.5), 0, 255)
        return torch.from_numpy(np.ascontiguousarray(u8, dtype=np.uint8))


def default_rgb_bands(num_bands: int, dtype: str) -> tuple[int, int, int]:
    """Bands run blue to red (g, r, i, ...): the reddest as R, the middle one as G and the
    bluest as B, so two bands (g, r) show as (r, r, g) and five (u..z) as bands 4, 2, 0.
    Three uint8 bands are RGB already; one band is grey. Any store has a default, so a
    report or an FID of a 2-band flux store needs no --rgb-bands."""
    if num_bands == 1:
        return (0, 0, 0)
    if num_bands == 3 and dtype == "uint8":
        return (0, 1, 2)
    return (num_bands - 1, num_bands // 2, 0)


def extractor_input(real: Store, generated: Store, *, stretch_file: str | None = None,
                    rgb_bands: list[int] | None = None) -> ExtractorInput:
    """The one pixel map for a comparison of `generated` against `real`; ValueError naming
    both stores if they cannot be compared."""
    specs = {store.path: store.spec for store in (real, generated)}
    dtypes = {spec.image_dtype for spec in specs.values()}
    bands = {spec.image_shape[0] for spec in specs.values()}
    if len(dtypes) != 1 or len(bands) != 1:
        described = "; ".join(f"{path}: {spec.image_shape[0]} band(s) {spec.image_dtype}"
                              for path, spec in specs.items())
        raise ValueError(f"the stores hold different kinds of images ({described}): compare "
                         "like with like (uint8 RGB with uint8 RGB, flux with flux in the same "
                         "bands)")
    dtype, num_bands = dtypes.pop(), bands.pop()
    chosen = tuple(rgb_bands) if rgb_bands is not None else default_rgb_bands(num_bands, dtype)
    if any(not 0 <= b < num_bands for b in chosen):
        raise ValueError(f"rgb_bands {list(chosen)}: the images have bands 0..{num_bands - 1}")
    given = load_stretch(stretch_file)
    stretch = stretch_for_store(real, given)
    source = (f"from {stretch_file}" if given is not None
              else "estimated from the real store" if dtype != "uint8" else "none")
    return ExtractorInput(dtype, num_bands, stretch, chosen, source)  # type: ignore[arg-type]


def model_pixels(images: np.ndarray, stretch: Stretch, size: int | None) -> torch.Tensor:
    """Store images -> float32 [-1, 1] (the training space StoreDataset gives models),
    resized to `size` (bilinear with antialiasing) when the store's side differs."""
    pixels = torch.from_numpy(np.ascontiguousarray(
        stretch.forward(np.asarray(images)), dtype=np.float32))
    if size is not None and pixels.shape[-1] != size:
        pixels = torch.nn.functional.interpolate(pixels, size=(size, size), mode="bilinear",
                                                 align_corners=False, antialias=True)
    return pixels
