"""Pixels for synthetic galaxies: GalSim drawing, noise, SDSS-like colour composites.

Images are in nanomaggies per pixel (SDSS's linear flux unit: 1 nmgy is AB
magnitude 22.5), sky-subtracted, like SDSS ``frame`` cutouts. The PSF is a
Moffat profile, the same in every band (real seeing is ~5% worse in g than
in i; ignored so that each galaxy needs only two FFT draws, bulge and disk,
whatever the number of bands).

Noise per pixel is Gaussian with variance sky_noise^2 + max(signal, 0) / gain:
the sky's photon noise plus the galaxy's own (Poisson in the large-count
limit). Defaults are typical SDSS values (sky 22.0, 20.9, 20.2 mag/arcsec^2 in
g, r, i; about 1000, 940, 700 electrons per nanomaggy), which put the 5-sigma
point-source depth near g 23.4, r 22.9, i 22.4 in 1.4 arcsec seeing.

The uint8 composite follows Lupton et al. 2004 (PASP 116, 133): the mean of
the scaled bands I sets one asinh stretch F(I) = asinh(Q I / stretch) / Q
applied to all bands alike (colour is kept, only brightness is compressed),
and a pixel whose brightest channel exceeds 1 is scaled down as a whole
rather than clipped per channel, so bright cores stay their true colour
instead of turning white. Band weights (i 1.0, r 1.5, g 2.5 for R, G, B) are
the ones used for SDSS colour images in the Legacy Survey viewer. With
Q = 8 and stretch = 0.2 nmgy (linear below ~stretch/Q = 0.025 nmgy, about
the sky noise) the sky is a dark speckle, disks' outskirts are visible and
cores are bright but keep their colour, as in SDSS JPEG cutouts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import galsim
import numpy as np

from galaxy_hpc.data.synth.physics import BULGE_TRUNCATION, GalaxyParams

RGB_Q = 8.0
RGB_STRETCH = 0.2  # nmgy
SDSS_PIXEL_ARCSEC = 0.396
# Per band: sky noise sigma (nanomaggies per 0.396" pixel), electrons per nanomaggy,
# SDSS-colour-image weight. u and z are rarely used; their values are rough.
SDSS_BANDS: dict[str, tuple[float, float, float]] = {
    "u": (0.030, 250.0, 1.5),
    "g": (0.016, 1000.0, 2.5),
    "r": (0.027, 940.0, 1.5),
    "i": (0.043, 700.0, 1.0),
    "z": (0.14, 150.0, 0.4),
}
BAND_ORDER = "ugriz"  # blue to red
_MIN_COMPONENT_FLUX = 1e-6  # nmgy; below this a component is not drawn


@functools.lru_cache(maxsize=8)
def _psf(fwhm: float, beta: float) -> galsim.GSObject:
    return galsim.Moffat(beta=beta, fwhm=fwhm)


@functools.lru_cache(maxsize=16)
def _unit_bulge(n: float) -> galsim.GSObject:
    # GalSim caches its Sersic tables by (n, truncation / scale radius); building the
    # profile once at unit size and dilating it keeps that ratio bit-identical, so
    # the ~30 ms table build happens once per index instead of once per galaxy.
    return galsim.Sersic(n, half_light_radius=1.0, trunc=BULGE_TRUNCATION)


def _draw_unit(
    profile: galsim.GSObject, psf: galsim.GSObject, size: int, scale: float
) -> np.ndarray:
    image = galsim.Convolve(profile, psf).drawImage(nx=size, ny=size, scale=scale)
    return image.array.astype(np.float64)


def draw_noiseless(p: GalaxyParams, cfg) -> np.ndarray:
    """(bands, size, size) float64 image in nmgy/pixel, convolved with the PSF and pixel."""
    size, scale = cfg.size, cfg.pixel_scale_arcsec
    psf = _psf(cfg.psf_fwhm_arcsec, cfg.psf_beta)
    beta = p.position_angle_deg * galsim.degrees
    image = np.zeros((len(cfg.bands), size, size))
    bulge_flux = np.asarray(p.bulge_flux)
    disk_flux = np.asarray(p.disk_flux)
    if bulge_flux.max() > _MIN_COMPONENT_FLUX:
        bulge = (
            _unit_bulge(p.bulge_sersic_n)
            .dilate(p.bulge_hlr_arcsec)
            .shear(q=p.bulge_axis_ratio, beta=beta)
        )
        image += bulge_flux[:, None, None] * _draw_unit(bulge, psf, size, scale)[None]
    if disk_flux.max() > _MIN_COMPONENT_FLUX:
        disk = galsim.Exponential(half_light_radius=p.disk_hlr_arcsec).shear(
            q=p.disk_axis_ratio, beta=beta
        )
        image += disk_flux[:, None, None] * _draw_unit(disk, psf, size, scale)[None]
    return image


def band_noise(cfg) -> tuple[np.ndarray, np.ndarray]:
    """Sky sigma (nmgy/pixel) and electrons per nmgy for each of cfg.bands.

    The SDSS sky sigma is per 0.396" pixel; sky counts scale with pixel area,
    so its sigma scales with the pixel size.
    """
    if cfg.sky_noise is not None:
        sky = np.asarray(cfg.sky_noise, dtype=float)
    else:
        scale = cfg.pixel_scale_arcsec / SDSS_PIXEL_ARCSEC
        sky = np.array([SDSS_BANDS[b][0] * scale for b in cfg.bands])
    gain = cfg.electrons_per_nanomaggy
    if gain is None:
        gain = [SDSS_BANDS[b][1] for b in cfg.bands]
    return sky, np.asarray(gain, dtype=float)


def add_noise(
    image: np.ndarray, rng: np.random.Generator, sky: np.ndarray, gain: np.ndarray
) -> np.ndarray:
    variance = sky[:, None, None] ** 2 + np.maximum(image, 0.0) / gain[:, None, None]
    return image + rng.standard_normal(image.shape) * np.sqrt(variance)


def rgb_order(bands: Sequence[str]) -> list[int]:
    """Indices of the bands to use as R, G, B: reddest first."""
    return sorted(range(len(bands)), key=lambda k: -BAND_ORDER.index(bands[k]))


def lupton_rgb(
    images: np.ndarray, bands: Sequence[str], *, q: float = RGB_Q, stretch: float = RGB_STRETCH
) -> np.ndarray:
    """(n, 3, H, W) linear nmgy in `bands` -> (n, 3, H, W) uint8 RGB (reddest band is R)."""
    if images.ndim != 4 or images.shape[1] != 3 or len(bands) != 3:
        raise ValueError(
            f"lupton_rgb needs (n, 3, H, W) images in 3 bands, got {images.shape} in {tuple(bands)}"
        )
    order = rgb_order(bands)
    weights = np.array([SDSS_BANDS[bands[k]][2] for k in order])
    x = np.maximum(images[:, order].astype(np.float64), 0.0) * weights[None, :, None, None]
    mean = x.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(mean > 0, np.arcsinh(q * mean / stretch) / (q * mean), 1.0 / stretch)
    rgb = x * factor
    peak = rgb.max(axis=1, keepdims=True)
    rgb = np.where(peak > 1.0, rgb / np.maximum(peak, 1.0), rgb)
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def render_preview(
    images: np.ndarray,
    path: str | Path,
    *,
    bands: Sequence[str] = ("g", "r", "i"),
    labels: Sequence[str] | None = None,
    num_columns: int | None = None,
    zoom: int = 2,
) -> Path:
    """Write a PNG grid of images for eyeballing; returns the path.

    uint8 images are taken as RGB composites; float images as linear flux in
    `bands` and stretched with lupton_rgb. `labels` (one short string per
    image) are written under the tiles.
    """
    from PIL import Image, ImageDraw

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(
            f"render_preview needs a non-empty (n, C, H, W) array, got shape {images.shape}"
        )
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"labels has {len(labels)} entries for {len(images)} images")
    if zoom < 1:
        raise ValueError(f"zoom must be >= 1, got {zoom}")
    rgb = images if images.dtype == np.uint8 else lupton_rgb(images, bands)
    num, _, height, width = rgb.shape
    cols = num_columns or max(1, math.ceil(math.sqrt(num)))
    rows = math.ceil(num / cols)
    gap, text_h = 2, (12 if labels is not None else 0)
    tile_w, tile_h = width * zoom + gap, height * zoom + gap + text_h
    canvas = Image.new("RGB", (cols * tile_w + gap, rows * tile_h + gap), (40, 40, 40))
    draw = ImageDraw.Draw(canvas)
    for k in range(num):
        tile = Image.fromarray(np.ascontiguousarray(rgb[k].transpose(1, 2, 0)[::-1]), "RGB")
        tile = tile.resize((width * zoom, height * zoom), Image.NEAREST)
        x0, y0 = gap + (k % cols) * tile_w, gap + (k // cols) * tile_h
        canvas.paste(tile, (x0, y0))
        if labels is not None:
            draw.text((x0 + 1, y0 + height * zoom), str(labels[k]), fill=(220, 220, 220))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
