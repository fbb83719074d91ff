"""Truth for one synthetic galaxy: mass, redshift, fluxes, size, morphology, shape.

The order of the draws is the physics: stellar mass first, then morphology and
colours (which depend on mass), then a luminosity from the mass-to-light ratio
of that colour, then a redshift the survey's flux limit allows (see
``population`` for these relations and their sources), and last the
size and the orientation. Every number comes from the generator handed in,
in a fixed order, so a galaxy depends only on that generator's seed.

* Bulge-to-total ratio (r band): a logistic function of log M* (half-way at
  10^10.6 Msun) with a wide Gaussian scatter in the logit, so that low-mass
  galaxies are disks, high-mass ones mostly spheroids, and B/T is bimodal as
  observed (e.g. Mendel et al. 2014, ApJS 210, 3). The bulge Sersic index is
  picked from a small grid near 1 + 3 B/T: pseudo-bulges in disks,
  de Vaucouleurs profiles in spheroids.
* Size: the r-band half-light radius follows Shen et al. 2003 (MNRAS 343,
  978): early types R = 2.88e-6 kpc (M/Msun)^0.56, late types
  R = 0.1 kpc M^0.14 (1 + M/3.98e10)^0.25; log R interpolates between the two
  by B/T, with 0.15 dex scatter, and becomes an angle through the angular
  diameter distance. The bulge is more compact than the disk
  (R_bulge / R_disk = 0.25 + 0.5 B/T), both sized so the whole galaxy has
  that half-light radius.
* Shape: an oblate disk of intrinsic thickness q0 in [0.1, 0.2] and an oblate
  bulge of flattening in [0.4, 0.9], seen at a random orientation (cos i
  uniform): q = sqrt(cos^2 i + q0^2 sin^2 i) (Hubble 1926).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import gammainc

from galaxy_hpc.data.synth.population import (
    NANOMAGGY_ZERO_POINT,
    abs_mag_r,
    angular_diameter_distance_mpc,
    apparent_r_mag,
    colour_offsets,
    draw_redshift,
    mass_cdf,
    mean_colours,
    total_colour,
)

BANDS_KNOWN = ("u", "g", "r", "i", "z")
BULGE_TRUNCATION = 5.0  # bulges are truncated at this many half-light radii
EXP_B1 = 1.6783469900166610  # half-light radius / scale length of an exponential


@dataclass(frozen=True)
class GalaxyParams:
    """Truth for one galaxy; fluxes in nanomaggies, angles in degrees, sizes in arcsec."""

    redshift: float
    log_stellar_mass: float
    r_mag: float
    bulge_fraction: float  # r-band B/T
    bulge_sersic_n: float
    half_light_radius_arcsec: float  # of the whole galaxy, circularized, before the PSF
    bulge_hlr_arcsec: float
    disk_hlr_arcsec: float
    inclination_deg: float  # 0 face-on, 90 edge-on
    disk_axis_ratio: float
    bulge_axis_ratio: float
    position_angle_deg: float  # major axis, counter-clockwise from the image +x axis
    bulge_flux: tuple[float, ...]  # per band, in the order of the bands asked for
    disk_flux: tuple[float, ...]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 50.0), -50.0)))


@functools.cache
def _bulge_scale_ratio(n: float) -> float:
    """Scale radius / half-light radius of a Sersic truncated at BULGE_TRUNCATION hlr."""
    import galsim

    return galsim.Sersic(n, half_light_radius=1.0, trunc=BULGE_TRUNCATION).scale_radius


def _bulge_enclosed(x: float, n: float) -> float:
    """Light fraction of a truncated Sersic inside x half-light radii (circular)."""
    if x >= BULGE_TRUNCATION:
        return 1.0
    r0 = _bulge_scale_ratio(n)
    return gammainc(2 * n, (x / r0) ** (1 / n)) / gammainc(
        2 * n, (BULGE_TRUNCATION / r0) ** (1 / n)
    )


def _disk_enclosed(x: float) -> float:
    return gammainc(2.0, EXP_B1 * x)


def component_radii(hlr: float, bt: float, n: float) -> tuple[float, float]:
    """Bulge and disk half-light radii whose sum of light has half-light radius hlr.

    Each component's enclosed light is taken in its own circularized radius
    (GalSim shears preserve area), so the composite radius is the circularized
    one, exact for a face-on galaxy.
    """
    kappa = 0.25 + 0.5 * bt

    def excess(log_rd: float) -> float:
        rd = math.exp(log_rd)
        return (
            bt * _bulge_enclosed(hlr / (kappa * rd), n) + (1 - bt) * _disk_enclosed(hlr / rd) - 0.5
        )

    lo, hi = math.log(hlr) - 3.0, math.log(hlr) + 3.0
    rd = math.exp(brentq(excess, lo, hi, xtol=1e-12, rtol=1e-12))
    return kappa * rd, rd


def size_kpc(log_mass: float, bt: float) -> float:
    """Median r-band half-light radius from Shen et al. (2003), blended by B/T."""
    mass = 10.0**log_mass
    log_early = math.log10(2.88e-6) + 0.56 * log_mass
    log_late = math.log10(0.1 * mass**0.14 * (1 + mass / 3.98e10) ** (0.39 - 0.14))
    return 10 ** (bt * log_early + (1 - bt) * log_late)


def draw_params(rng: np.random.Generator, cfg) -> GalaxyParams:
    """One galaxy's truth; cfg is a SynthConfig (only its physics fields are read)."""
    grid, cdf = mass_cdf(
        tuple(cfg.log_stellar_mass_range),
        tuple(cfg.redshift_range),
        cfg.r_mag_limit,
        cfg.mass_prior,
    )
    log_mass = float(np.interp(rng.uniform(), cdf, grid))
    bt = _sigmoid(2.5 * (log_mass - 10.6) + rng.normal(0.0, 1.3))

    n_grid = np.asarray(cfg.sersic_indices, dtype=float)
    weights = np.exp(-0.5 * ((n_grid - (1.0 + 3.0 * bt)) / 0.8) ** 2)
    n = float(n_grid[rng.choice(len(n_grid), p=weights / weights.sum())])

    mean_bulge, mean_disk = mean_colours(log_mass)
    gr_bulge = mean_bulge + rng.normal(0.0, 0.04)
    gr_disk = min(mean_disk + rng.normal(0.0, 0.08), gr_bulge)
    gr_total = float(total_colour(bt, gr_bulge, gr_disk))
    abs_mag = float(abs_mag_r(log_mass, gr_total, rng.normal(0.0, 0.1)))

    z = draw_redshift(rng, abs_mag, gr_total, cfg.redshift_range, cfg.r_mag_limit)
    r_mag = apparent_r_mag(abs_mag, gr_total, z)
    flux_r = 10 ** (-0.4 * (r_mag - NANOMAGGY_ZERO_POINT))

    r_kpc = size_kpc(log_mass, bt) * 10 ** rng.normal(0.0, 0.15)
    hlr = r_kpc / (angular_diameter_distance_mpc(z) * 1e3) * 206264.806
    hlr_bulge, hlr_disk = component_radii(hlr, bt, n)

    cos_i = rng.uniform()
    q0 = rng.uniform(0.1, 0.2)
    zeta = rng.uniform(0.4, 0.9)
    q_disk = math.sqrt(cos_i**2 + q0**2 * (1 - cos_i**2))
    q_bulge = math.sqrt(cos_i**2 + zeta**2 * (1 - cos_i**2))
    pa = float(rng.uniform(0.0, 180.0))

    bands = tuple(cfg.bands)
    bulge_flux = bt * flux_r * 10 ** (-0.4 * colour_offsets(gr_bulge, z, bands))
    disk_flux = (1 - bt) * flux_r * 10 ** (-0.4 * colour_offsets(gr_disk, z, bands))
    return GalaxyParams(
        redshift=z,
        log_stellar_mass=log_mass,
        r_mag=r_mag,
        bulge_fraction=bt,
        bulge_sersic_n=n,
        half_light_radius_arcsec=hlr,
        bulge_hlr_arcsec=hlr_bulge,
        disk_hlr_arcsec=hlr_disk,
        inclination_deg=math.degrees(math.acos(cos_i)),
        disk_axis_ratio=q_disk,
        bulge_axis_ratio=q_bulge,
        position_angle_deg=pa,
        bulge_flux=tuple(float(f) for f in bulge_flux),
        disk_flux=tuple(float(f) for f in disk_flux),
    )
