"""Fast, model-free measurements of galaxy images, and how well they follow a condition.

Used wherever a number per galaxy is needed in bulk and quickly: the conditional GAN logs
during training whether brighter/larger galaxies come out where it was asked for more
stellar mass (galaxyCGAN's known failure was that they did not), and evaluation reports
the same rank correlations for any conditional model's catalog. For careful morphology
(Gini, M20, asymmetry, ...) evaluation uses statmorph; these are its cheap cousins.

Measurements work on (N, C, H, W) arrays of any dtype, summed over bands:

- sky: the median of the image's outer border (a ring `border` pixels wide), per band;
  synthetic and survey cutouts are centred on the galaxy, so the border is mostly sky.
- total flux: the sum of sky-subtracted pixels inside a circle about the flux-weighted
  centre: first of radius `aperture` x the half-side, then of 4 half-light radii from
  that first pass (a wide sum adds the noise of every sky pixel). 4 R_e holds ~99% of
  an exponential disk's light and ~85% of a de Vaucouleurs profile's.
- half-light radius: the radius of the circle, about the same centre, that holds half
  of that flux (a curve of growth over pixel radii, interpolated), in pixels.
- concentration and colour (`profile`): 5 log10(r80/r20) and a band difference in
  magnitudes, in the same aperture (conditional fidelity compares their distributions).

Values are in the images' own units (flux for float stores, pixel values for uint8
ones): compare galaxies within one catalog, not across stretches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr


@dataclass(frozen=True)
class Photometry:
    total_flux: np.ndarray  # (N,) float64
    half_light_radius: np.ndarray  # (N,) float64, pixels
    centre: np.ndarray  # (N, 2) float64, (y, x) pixels


def sky_level(images: np.ndarray, border: int = 3) -> np.ndarray:
    """(N, C) median of each band's outer `border` pixels."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {x.shape}")
    h, w = x.shape[-2:]
    if 2 * border >= min(h, w):
        raise ValueError(f"border {border} leaves no inside of a {h}x{w} image")
    mask = np.ones((h, w), dtype=bool)
    mask[border:h - border, border:w - border] = False
    return np.median(x[..., mask], axis=-1)


def _growth_radii(light: np.ndarray, r: np.ndarray, r_max: float,
                  fractions: tuple[float, ...]) -> tuple[float, list[float]]:
    """(flux within r_max, the radii holding each fraction of it) of one image's sky-free
    light."""
    inside = r <= r_max
    total = float(light[inside].sum())
    if total <= 0:
        return total, [float("nan")] * len(fractions)
    radii, first = np.unique(np.round(r[inside], 6), return_inverse=True)
    growth = np.cumsum(np.bincount(first, weights=light[inside]))
    # A pixel's light lies around its centre's radius, not inside it: the curve of growth
    # through the pixels up to radius r_j is placed half-way to r_{j+1} (at the centres
    # themselves a 2-pixel Gaussian's radius comes out ~6% small).
    outer = np.append(0.5 * (radii[:-1] + radii[1:]), radii[-1])
    found = []
    for fraction in fractions:
        j = min(int(np.searchsorted(growth, fraction * total)), len(radii) - 1)
        r_lo, g_lo = (outer[j - 1], growth[j - 1]) if j > 0 else (0.0, 0.0)
        r_hi, g_hi = outer[j], growth[j]
        frac = (fraction * total - g_lo) / (g_hi - g_lo) if g_hi != g_lo else 1.0
        found.append(float(r_lo + np.clip(frac, 0.0, 1.0) * (r_hi - r_lo)))
    return total, found


def _curve_of_growth(light: np.ndarray, r: np.ndarray, r_max: float) -> tuple[float, float]:
    """(flux within r_max, radius holding half of it) of one image's sky-free light."""
    total, (half,) = _growth_radii(light, r, r_max, (0.5,))
    return total, half


def measure(images: np.ndarray, *, border: int = 3, aperture: float = 0.9) -> Photometry:
    """Total flux, half-light radius and centre of each image (see the module docstring)."""
    x = np.asarray(images, dtype=np.float64)
    sky = sky_level(x, border)
    light = (x - sky[..., None, None]).sum(axis=1)  # (N, H, W)
    n, h, w = light.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    # Centre: flux-weighted over positive pixels near the middle (noise averages out).
    positive = np.clip(light, 0.0, None)
    radius0 = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    weight = positive * (radius0 <= 0.5 * min(h, w))
    norm = weight.sum(axis=(1, 2))
    safe = np.where(norm > 0, norm, 1.0)
    cy = np.where(norm > 0, (weight * yy).sum(axis=(1, 2)) / safe, (h - 1) / 2)
    cx = np.where(norm > 0, (weight * xx).sum(axis=(1, 2)) / safe, (w - 1) / 2)
    r = np.hypot(yy[None] - cy[:, None, None], xx[None] - cx[:, None, None])  # (N, H, W)
    r_max = aperture * 0.5 * min(h, w)
    total = np.empty(n)
    half = np.empty(n)
    for k in range(n):
        # Pass 1 in the wide aperture; pass 2 in 4 half-light radii of pass 1, which holds
        # nearly all of a disk's light and far fewer sky pixels (their noise and the sky's
        # error dominate a faint galaxy's wide-aperture sum).
        total[k], half[k] = _curve_of_growth(light[k], r[k], r_max)
        for _ in range(3):  # converges in 1-2 for a bright galaxy; a faint one shrinks
            if not np.isfinite(half[k]):
                break
            total[k], half[k] = _curve_of_growth(
                light[k], r[k], float(np.clip(4.0 * half[k], 3.0, r_max)))
    return Photometry(total, half, np.stack([cy, cx], axis=1))


@dataclass(frozen=True)
class Profile:
    """Light profile and colour of each image, beside its Photometry."""

    concentration: np.ndarray  # (N,) 5 log10(r80 / r20), NaN where the flux is not positive
    colour: np.ndarray  # (N,) m_a - m_b in magnitudes, NaN without two bands or positive flux


def profile(images: np.ndarray, photometry: Photometry, *,
            colour_bands: tuple[int, int] | None = (0, 1), border: int = 3,
            aperture: float = 0.9) -> Profile:
    """Concentration and colour of each image, in the aperture its total flux was taken in.

    - concentration: C = 5 log10(r80 / r20) (Bershady et al. 2000; statmorph's), r20 and
      r80 the radii holding 20% and 80% of the light within 4 half-light radii (clipped to
      [3, `aperture` x the half-side] pixels, as `measure` clips it), about the same
      centre: ~2.7 for an exponential disk, ~5 for a de Vaucouleurs profile (2.14 for a
      Gaussian), whatever the image's units. Where r20 is ~2 pixels, pixelisation adds
      ~0.1 (a Gaussian of sigma 3 px reads 2.26, of 5 px 2.14).
    - colour: -2.5 log10(F_a / F_b) of the sky-subtracted light of bands a, b in that same
      aperture (one aperture for both bands: a colour of the same stars). For float flux
      stores of the synthetic set (bands g, r, i) the default (0, 1) is g - r. On uint8
      RGB composites it is a colour of the picture (R vs G channel sums of an asinh
      stretch), fit to compare two catalogs made by the same stretch and no more. A
      one-band store has no colour (NaN), nor has any image whose flux in either band
      is not positive.
    """
    x = np.asarray(images, dtype=np.float64)
    sky = sky_level(x, border)
    banded = x - sky[..., None, None]  # (N, C, H, W)
    light = banded.sum(axis=1)
    n, c, h, w = banded.shape
    if colour_bands is not None and (c < 2 or max(colour_bands) >= c):
        colour_bands = None
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r_max = aperture * 0.5 * min(h, w)
    concentration = np.full(n, np.nan)
    colour = np.full(n, np.nan)
    for k in range(n):
        half = photometry.half_light_radius[k]
        if not np.isfinite(half):
            continue
        cy, cx = photometry.centre[k]
        r = np.hypot(yy - cy, xx - cx)
        radius = float(np.clip(4.0 * half, 3.0, r_max))
        total, (r20, r80) = _growth_radii(light[k], r, radius, (0.2, 0.8))
        if total > 0 and r20 > 0:
            concentration[k] = 5.0 * np.log10(r80 / r20)
        if colour_bands is not None:
            inside = r <= radius
            a, b = (float(banded[k, band][inside].sum()) for band in colour_bands)
            if a > 0 and b > 0:
                colour[k] = -2.5 * np.log10(a / b)
    return Profile(concentration, colour)


@dataclass(frozen=True)
class Consistency:
    """Spearman rank correlation of a measured quantity against a requested one, overall
    and within bins of a third (e.g. mass vs flux per redshift bin)."""

    rho: float
    num_objects: int
    bin_edges: tuple[float, ...]
    bin_rho: tuple[float, ...]  # NaN for a bin with fewer than `min_per_bin` objects
    bin_counts: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"rho": self.rho, "num_objects": self.num_objects,
                "bin_edges": list(self.bin_edges), "bin_rho": list(self.bin_rho),
                "bin_counts": list(self.bin_counts)}


def _rho(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(spearmanr(a[ok], b[ok]).statistic)


def consistency(requested: np.ndarray, measured: np.ndarray, *, by: np.ndarray | None = None,
                num_bins: int = 3, min_per_bin: int = 5,
                bin_edges: np.ndarray | None = None) -> Consistency:
    """Rank correlation of `measured` with `requested`; with `by`, also within `num_bins`
    quantile bins of `by` (so that, e.g., a redshift that dims everything does not hide
    or fake the mass trend), or within the bins of given `bin_edges` (another catalog's
    quantiles: a generated catalog's trend in the real catalog's bins)."""
    requested = np.asarray(requested, dtype=np.float64).ravel()
    measured = np.asarray(measured, dtype=np.float64).ravel()
    if requested.shape != measured.shape:
        raise ValueError(f"requested {requested.shape} and measured {measured.shape} differ")
    edges: tuple[float, ...] = ()
    rhos: list[float] = []
    counts: list[int] = []
    if by is not None:
        by = np.asarray(by, dtype=np.float64).ravel()
        if by.shape != requested.shape:
            raise ValueError(f"by {by.shape} and requested {requested.shape} differ")
        if bin_edges is not None:
            num_bins = len(bin_edges) - 1
        cuts = np.quantile(by, np.linspace(0.0, 1.0, num_bins + 1)) if bin_edges is None \
            else np.asarray(bin_edges, dtype=np.float64)
        edges = tuple(float(c) for c in cuts)
        which = np.clip(np.searchsorted(cuts, by, side="right") - 1, 0, num_bins - 1)
        for b in range(num_bins):
            sel = which == b
            counts.append(int(sel.sum()))
            rhos.append(_rho(requested[sel], measured[sel]) if sel.sum() >= min_per_bin
                        else float("nan"))
    return Consistency(_rho(requested, measured), int(len(requested)), edges, tuple(rhos),
                       tuple(counts))
