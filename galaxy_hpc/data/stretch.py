"""Pixel stretches: store values <-> the [-1, 1] range generative models train on.

Every stretch is an invertible, per-band, elementwise map with `forward` (store values to
model space) and `inverse` (model space back to store values), on numpy arrays or torch
tensors shaped (..., C, H, W), and a JSON-able `to_dict()` so a trained model carries the
exact map it was trained with (`stretch_from_dict`). Generated images go back to flux (or
uint8) with `inverse`.

- uint8 stores (RGB composites already stretched by the survey or by ingest):
  `Uint8Stretch`, y = x / 127.5 - 1; inverse (y + 1) * 127.5, clipped to [0, 255].
- float32 stores (linear flux, e.g. nanomaggies from FITS): `AsinhStretch`, per band b

      a(x) = asinh(x / softening_b)
      y    = 2 * (a(x) - a(lower_b)) / (a(upper_b) - a(lower_b)) - 1
      x    = softening_b * sinh((y + 1) / 2 * (a(upper_b) - a(lower_b)) + a(lower_b))

  Linear (noise keeps its Gaussian shape) for |x| << softening, logarithmic above, so a
  galaxy core 1000x brighter than the sky noise and the noise itself both get dynamic
  range. [lower_b, upper_b] maps onto [-1, 1]; flux outside it maps outside [-1, 1] and
  still inverts exactly (no clipping: a clipped bright core could never be recovered).
  `estimate_asinh_stretch` picks softening = the sky noise (robust sigma from the median
  absolute deviation, since most pixels of a cutout are sky), lower/upper = the 0.1% and
  99.99% quantiles of the pixels of a sample of the store. Why the noise as softening:
  the same choice as Lupton et al. (1999) asinh magnitudes, whose softening is set by
  the noise so that faint and negative fluxes stay well-behaved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hpc.store import Store

# Elements per step of Uint8Stretch.forward on numpy arrays: the float32 block (512 KiB)
# stays in cache between the cast, the divide and the subtract (measured ~30% faster than
# passes over a whole 64 x 3 x 128 x 128 batch, which leave the cache between them).
_BLOCK = 1 << 17
# Quantiles of the sampled pixels that map to -1 and +1 (per band).
LOWER_QUANTILE = 0.001
UPPER_QUANTILE = 0.9999
MAD_TO_SIGMA = 1.4826  # sigma of a Gaussian from its median absolute deviation
DEFAULT_SAMPLE_ITEMS = 512


def _per_band(values: np.ndarray, like: Any) -> Any:
    """(C,) parameters shaped (C, 1, 1) to broadcast over (..., C, H, W)."""
    column = np.asarray(values, dtype=np.float64).reshape(-1, 1, 1)
    if isinstance(like, torch.Tensor):
        dtype = like.dtype if like.is_floating_point() else torch.float32
        return torch.as_tensor(column, dtype=dtype, device=like.device)
    return column.astype(like.dtype if like.dtype.kind == "f" else np.float32)


def _as_float(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x if x.is_floating_point() else x.float()
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def _output(x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """`out`, checked, or a new array: float32 for integer input, else x's dtype."""
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    if out is None:
        return np.empty(x.shape, dtype)
    if out.shape != x.shape or out.dtype != dtype:
        raise ValueError(f"out must be a {dtype} array of shape {x.shape}, got {out.dtype} "
                         f"{out.shape}")
    return out


def _check_bands(x: Any, num_bands: int, name: str) -> None:
    if x.ndim < 3 or num_bands not in (1, x.shape[-3]):
        raise ValueError(f"{name} expects (..., {num_bands}, H, W) images, "
                         f"got shape {tuple(x.shape)}")


def _cast_divide_subtract(x: np.ndarray, y: np.ndarray) -> None:
    """y = x / 127.5 - 1 in y's float dtype, in two passes over y: a divide that casts as
    it reads (the cast of uint8 to float32 is exact, so the quotient is the one torch
    computes) and a subtract. With numpy 2 the casting divide is no slower than a plain
    one, so a separate cast pass only added a pass over memory (measured 21.5 vs 17 us
    per 3 x 128 x 128 image gathered from a shard read)."""
    np.divide(x, y.dtype.type(127.5), out=y, dtype=y.dtype)
    np.subtract(y, y.dtype.type(1.0), out=y)


@dataclass(frozen=True)
class Uint8Stretch:
    """uint8 pixels <-> [-1, 1]: y = x / 127.5 - 1 (any number of bands)."""

    def forward(self, x: Any, out: np.ndarray | None = None) -> Any:
        """Tensors or arrays; `out` (numpy only): the float array to write into."""
        if isinstance(x, torch.Tensor):
            y = x.to(torch.float32).div_(127.5) if not x.is_floating_point() else x / 127.5
            return y.sub_(1.0)
        x = np.asarray(x)
        y = _output(x, out)
        # Correctly rounded x / 127.5 - 1 (what torch computes), in passes over a float
        # block that stays in cache; large arrays go block by block.
        if x.size <= _BLOCK or not (x.flags.c_contiguous and y.flags.c_contiguous):
            _cast_divide_subtract(x, y)
            return y
        source, target = x.reshape(-1), y.reshape(-1)
        for start in range(0, source.size, _BLOCK):
            _cast_divide_subtract(source[start:start + _BLOCK], target[start:start + _BLOCK])
        return y

    def inverse(self, y: Any) -> Any:
        """Back to [0, 255] (float; round to get the stored uint8 values)."""
        x = (_as_float(y) + 1.0) * 127.5
        return x.clamp(0.0, 255.0) if isinstance(x, torch.Tensor) else np.clip(x, 0.0, 255.0)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "uint8"}


@dataclass(frozen=True)
class AsinhStretch:
    """Per-band arcsinh stretch of linear flux; the formula is in the module docstring.
    One value per parameter (a scalar) is a global stretch applied to every band."""

    softening: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("softening", "lower", "upper"):
            values = getattr(self, name)
            values = (values,) if isinstance(values, (int, float)) else values
            object.__setattr__(self, name, tuple(float(v) for v in values))
        counts = {len(self.softening), len(self.lower), len(self.upper)}
        if len(counts) != 1 or not self.softening:
            raise ValueError("AsinhStretch: softening, lower and upper need one value per band, "
                             f"got {len(self.softening)}, {len(self.lower)}, {len(self.upper)}")
        for b, (s, lo, hi) in enumerate(zip(self.softening, self.lower, self.upper)):
            if not all(math.isfinite(v) for v in (s, lo, hi)):
                raise ValueError(f"AsinhStretch band {b}: parameters must be finite")
            if not s > 0:
                raise ValueError(f"AsinhStretch band {b}: softening must be > 0, got {s}")
            if not lo < hi:
                raise ValueError(f"AsinhStretch band {b}: lower ({lo}) must be < upper ({hi})")

    @property
    def num_bands(self) -> int:
        return len(self.softening)

    def _terms(self, like: Any) -> tuple[Any, Any, Any]:
        soft = np.asarray(self.softening)
        a_lo = np.arcsinh(np.asarray(self.lower) / soft)
        a_hi = np.arcsinh(np.asarray(self.upper) / soft)
        return _per_band(soft, like), _per_band(a_lo, like), _per_band(a_hi - a_lo, like)

    def forward(self, x: Any, out: np.ndarray | None = None) -> Any:
        """Tensors or arrays; `out` (numpy only): the float array to write into."""
        x = _as_float(x)
        _check_bands(x, self.num_bands, "AsinhStretch.forward")
        soft, a_lo, span = self._terms(x)
        if isinstance(x, torch.Tensor):
            return (x / soft).asinh_().sub_(a_lo).mul_(2.0 / span).sub_(1.0)
        y = np.divide(x, soft, out=_output(x, out))  # a new array: the rest works in place
        np.arcsinh(y, out=y)
        y -= a_lo
        y *= 2.0 / span
        y -= 1.0
        return y

    def inverse(self, y: Any) -> Any:
        y = _as_float(y)
        _check_bands(y, self.num_bands, "AsinhStretch.inverse")
        soft, a_lo, span = self._terms(y)
        sinh = torch.sinh if isinstance(y, torch.Tensor) else np.sinh
        return soft * sinh((y + 1.0) / 2.0 * span + a_lo)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "asinh", "softening": list(self.softening),
                "lower": list(self.lower), "upper": list(self.upper)}


Stretch = Uint8Stretch | AsinhStretch


def stretch_from_dict(state: Mapping[str, Any]) -> Stretch:
    """The stretch `to_dict()` described (e.g. read back from a model folder)."""
    kind = state.get("kind")
    if kind == "uint8":
        return Uint8Stretch()
    if kind == "asinh":
        return AsinhStretch(softening=state["softening"], lower=state["lower"],
                            upper=state["upper"])
    raise ValueError(f"unknown stretch kind {kind!r}: expected 'uint8' or 'asinh'")


def estimate_asinh_stretch(images: np.ndarray, *, softening_sigmas: float = 1.0,
                           lower_quantile: float = LOWER_QUANTILE,
                           upper_quantile: float = UPPER_QUANTILE) -> AsinhStretch:
    """Per-band AsinhStretch from sample images (N, C, H, W) of linear flux.

    softening = softening_sigmas x the robust pixel sigma of the band (the sky noise);
    lower/upper = the given quantiles of the band's pixels. A noiseless band (sigma 0)
    gets softening = 1e-3 x upper, i.e. ~7 e-folds of dynamic range."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"need sample images (N, C, H, W) with N > 0, got shape {x.shape}")
    if not 0 <= lower_quantile < upper_quantile <= 1:
        raise ValueError("need 0 <= lower_quantile < upper_quantile <= 1, got "
                         f"{lower_quantile}, {upper_quantile}")
    if not softening_sigmas > 0:
        raise ValueError(f"softening_sigmas must be > 0, got {softening_sigmas}")
    bands = x.transpose(1, 0, 2, 3).reshape(x.shape[1], -1)
    if not np.isfinite(bands).all():
        raise ValueError("sample images hold NaN or infinite pixels: fix the store "
                         "(or give the stretch explicitly)")
    lower, upper = np.quantile(bands, [lower_quantile, upper_quantile], axis=1)
    median = np.median(bands, axis=1, keepdims=True)
    sigma = MAD_TO_SIGMA * np.median(np.abs(bands - median), axis=1)
    scale = np.maximum(np.abs(lower), np.abs(upper))
    softening = np.where(sigma > 0, softening_sigmas * sigma, 1e-3 * scale)
    flat = ~(upper > lower)
    if flat.any():
        raise ValueError(f"band(s) {np.flatnonzero(flat).tolist()} are constant in the sample: "
                         "no stretch maps them onto [-1, 1]; give the stretch explicitly")
    return AsinhStretch(softening=softening, lower=lower, upper=upper)


def sample_store_images(store: Store, max_items: int = DEFAULT_SAMPLE_ITEMS,
                        *, with_indices: bool = False) -> Any:
    """Up to max_items images spread evenly over the store: a slice from the start of up to
    16 evenly spaced shards (deterministic, shard-sized reads). With `with_indices`, also
    their store indices (to name the items of a bad sample)."""
    num_shards = store.num_shards
    picks = np.unique(np.linspace(0, num_shards - 1, min(16, num_shards)).round().astype(int))
    per_shard = max(1, -(-max_items // len(picks)))
    parts, indices = [], []
    for shard in picks.tolist():
        start, stop = store.shard_bounds(shard)
        stop = min(stop, start + per_shard)
        parts.append(store.read_images(start, stop))
        indices.append(np.arange(start, stop))
    images = np.concatenate(parts)[:max_items]
    return (images, np.concatenate(indices)[:max_items]) if with_indices else images


def stretch_for_store(store: Store, stretch: Stretch | Mapping[str, Any] | None = None,
                      **estimate: Any) -> Stretch:
    """The stretch for a store: `stretch` if given (object or dict), else Uint8Stretch for
    uint8 stores and an AsinhStretch estimated from a sample for float32 stores."""
    dtype = store.spec.image_dtype
    if stretch is not None:
        chosen = stretch_from_dict(stretch) if isinstance(stretch, Mapping) else stretch
        if isinstance(chosen, AsinhStretch) and chosen.num_bands not in (
                1, store.spec.image_shape[0]):
            raise ValueError(f"stretch has {chosen.num_bands} bands, the store's images have "
                             f"{store.spec.image_shape[0]}")
        if isinstance(chosen, Uint8Stretch) and dtype != "uint8":
            raise ValueError(f"{store.path} holds {dtype} images: a uint8 stretch does not fit; "
                             "use an 'asinh' stretch (or leave it out to estimate one)")
        return chosen
    if dtype == "uint8":
        return Uint8Stretch()
    from galaxy_hpc.data.nonfinite import check_read

    images, indices = sample_store_images(store, with_indices=True)
    check_read(store, images, indices, use="estimating its stretch from a sample")
    return estimate_asinh_stretch(images, **estimate)

