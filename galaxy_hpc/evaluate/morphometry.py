"""Non-parametric morphology of one galaxy per image, with statmorph (Rodriguez-Gomez et al.
2019) on a photutils segmentation: the numbers astronomers compare beyond FID.

Per image: the bands are summed (or one is taken), the sky (median of the outer border,
galaxy_hpc.data.photometry.sky_level) subtracted, the noise sigma estimated from the same
border (median absolute deviation), pixels of a copy smoothed by a 1-pixel Gaussian that
lie `threshold_sigmas` of its own sigma above its sky segmented
(photutils.segmentation.detect_sources, 5 connected pixels), and the segment under the
centre (cutouts are centred on their galaxy; else the one holding the brightest central
pixel) measured by statmorph with a weight map of that sigma. Reported:

- total_flux: statmorph's flux_circ, within 2 Petrosian radii (image units);
- half_light_radius: r50, the circular aperture with half of that flux (pixels);
- concentration C = 5 log10(r80 / r20), asymmetry A (rotation by 180 degrees,
  background-corrected), Gini and M20 (Lotz et al. 2004), ellipticity 1 - b/a from the
  second moments about the centroid.

statmorph flags measurements 0 (good), 1 (suspect), 2 (bad), 4 (catastrophic); flags >= 2
and images with no segment give NaN. statmorph also fits Sersic profiles and measures
MID statistics; those are never read here and are skipped (see `_Morphology`).
"""

from __future__ import annotations

import warnings

import numpy as np

from galaxy_hpc.data.photometry import sky_level

PARAMETERS = ("total_flux", "half_light_radius", "concentration", "asymmetry", "gini", "m20",
              "ellipticity")
UNITS = {"total_flux": "image units", "half_light_radius": "pixels"}
_STATMORPH_NAMES = {"total_flux": "flux_circ", "half_light_radius": "r50",
                    "concentration": "concentration", "asymmetry": "asymmetry", "gini": "gini",
                    "m20": "m20", "ellipticity": "ellipticity_centroid"}
MAD_TO_SIGMA = 1.4826
SMOOTHING_SIGMA = 1.0  # pixels, of the Gaussian the detection image is smoothed with
NO_SEGMENT = 8  # our flag beyond statmorph's: nothing above the threshold at the centre


def _morphology_class():
    import statmorph

    class _Morphology(statmorph.SourceMorphology):
        """statmorph evaluates every lazy property at construction (Sersic fits, MID, shape
        asymmetry: ~60% of its time here); ours are read on access instead. If statmorph
        renames the hook, this override is simply unused and everything is computed."""

        def _calculate_morphology(self) -> None:
            pass

    return _Morphology


def prepare(images: np.ndarray, band: int | None = None, border: int = 3
            ) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) sky-subtracted light and (N,) noise sigma of (N, C, H, W) images."""
    x = np.asarray(images, dtype=np.float64)
    if band is not None:
        if not 0 <= band < x.shape[1]:
            raise ValueError(f"band {band}: the images have bands 0..{x.shape[1] - 1}")
        x = x[:, band:band + 1]
    light = (x - sky_level(x, border)[..., None, None]).sum(axis=1)
    h, w = light.shape[1:]
    ring = np.ones((h, w), dtype=bool)
    ring[border:h - border, border:w - border] = False
    edge = light[:, ring]
    sigma = MAD_TO_SIGMA * np.median(np.abs(edge - np.median(edge, axis=1, keepdims=True)),
                                     axis=1)
    return light, sigma


def _central_segment(light: np.ndarray, threshold_sigmas: float, border: int = 3
                     ) -> np.ndarray | None:
    from photutils.segmentation import detect_sources
    from scipy.ndimage import gaussian_filter

    h, w = light.shape
    # Detect on a smoothed copy (photutils' advice): pixel noise would otherwise cut the
    # galaxy's outskirts into specks and, on noisy composites, join sky to the galaxy.
    smooth = gaussian_filter(light, SMOOTHING_SIGMA, mode="nearest")
    ring = np.ones((h, w), dtype=bool)
    ring[border:h - border, border:w - border] = False
    edge = smooth[ring]
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(edge - np.median(edge))))
    level = np.median(edge) + (threshold_sigmas * sigma if sigma > 0
                               else 0.05 * float(smooth.max()))
    if not level > 0:
        return None
    segments = detect_sources(smooth, level, n_pixels=5)
    if segments is None:
        return None
    label = segments.data[h // 2, w // 2]
    if label == 0:
        box = light[h // 4:h - h // 4, w // 4:w - w // 4]
        y, x = np.unravel_index(np.argmax(box), box.shape)
        label = segments.data[y + h // 4, x + w // 4]
    if label == 0:
        return None
    return (segments.data == label).astype(np.int32)


def measure_one(light: np.ndarray, sigma: float, threshold_sigmas: float = 1.5
                ) -> tuple[np.ndarray, int]:
    """(values in PARAMETERS order, flag) of one sky-subtracted image."""
    values = np.full(len(PARAMETERS), np.nan)
    segmap = _central_segment(light, threshold_sigmas)
    if segmap is None:
        return values, NO_SEGMENT
    weights = np.full(light.shape, sigma if sigma > 0 else 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statmorph warns per odd galaxy; the flag says it
        morph = _morphology_class()(light, segmap, 1, weightmap=weights)
        flag = int(morph.flag)
        if flag < 2:
            values = np.array([float(morph[_STATMORPH_NAMES[name]]) for name in PARAMETERS])
            flag = max(flag, int(morph.flag))  # lazy properties may raise the flag
    if flag >= 2:
        values[:] = np.nan
    values[~np.isfinite(values) | (values == -99.0)] = np.nan
    return values, flag


def measure(images: np.ndarray, *, band: int | None = None, threshold_sigmas: float = 1.5
            ) -> tuple[np.ndarray, np.ndarray]:
    """(N, len(PARAMETERS)) values (NaN where not measured) and (N,) flags."""
    light, sigma = prepare(images, band)
    values = np.full((len(light), len(PARAMETERS)), np.nan)
    flags = np.zeros(len(light), dtype=np.int64)
    for k in range(len(light)):
        values[k], flags[k] = measure_one(light[k], float(sigma[k]), threshold_sigmas)
    return values, flags
