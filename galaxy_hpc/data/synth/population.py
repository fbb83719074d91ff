"""Who is in the synthetic sample: masses, luminosities, colours, distances, selection.

* Distances: flat LambdaCDM, H0 = 70 km/s/Mpc, Om0 = 0.3 (astropy.cosmology),
  tabulated once on a fine z grid and interpolated.
* Stellar mass function: the GAMA double Schechter fit (Baldry et al. 2012,
  MNRAS 421, 621): log M* = 10.66, alpha = -0.35 and -1.47,
  phi = 3.96e-3 and 0.79e-3 per dex per Mpc^3.
* Colours: a red-sequence bulge (rest g-r ~ 0.76) and a blue-cloud disk
  (g-r ~ 0.42), both redder with mass (Baldry et al. 2004, ApJ 600, 681);
  r-i, u-g and i-z follow g-r linearly along the SDSS galaxy locus.
* Observed colours and magnitudes get linear-in-z K-corrections,
  g-r += 2.5 (g-r) z, r-i += 0.8 (g-r) z, K_r = 1.5 (g-r) z: an approximation
  to Chilingarian et al. 2010 (MNRAS 405, 1409) good to ~0.1 mag below
  z = 0.25 (a red galaxy at z = 0.1 has observed g-r ~ 0.96). u and z bands
  get none.
* Mass-to-light: log(M/L_r) = -0.306 + 1.097 (g-r) (Bell et al. 2003, ApJS
  149, 289); M_r(sun) = 4.65 (Willmer 2018, ApJS 236, 47).
* Selection: a flux limit (SDSS main sample: r < 17.77, Strauss et al. 2002).
  A galaxy's redshift is uniform in comoving volume (V ~ D_c^3 when flat) up to
  the redshift where it drops below the limit, and the sample's mass
  distribution is phi(M) V_max(M): dwarfs are rare and nearby, the peak is
  near 10^10.8, the median redshift ~0.09, as in SDSS.
"""

from __future__ import annotations

import functools

import numpy as np

SUN_ABS_MAG_R = 4.65
NANOMAGGY_ZERO_POINT = 22.5  # AB magnitude of 1 nanomaggy (SDSS flux unit)


@functools.lru_cache(maxsize=1)
def distance_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """z grid with distance modulus, angular diameter and comoving distance (Mpc)."""
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=70.0, Om0=0.3, Tcmb0=0.0)
    z = np.linspace(1e-4, 1.0, 20000)
    return (
        z,
        np.asarray(cosmo.distmod(z).value),
        np.asarray(cosmo.angular_diameter_distance(z).value),
        np.asarray(cosmo.comoving_distance(z).value),
    )


def angular_diameter_distance_mpc(z: float) -> float:
    zg, _, da, _ = distance_tables()
    return float(np.interp(z, zg, da))


def mean_colours(log_mass):
    """Rest-frame g-r of bulges and disks at a given stellar mass."""
    dmass = log_mass - 10.5
    return 0.76 + 0.04 * dmass, 0.42 + 0.10 * dmass


def total_colour(bt, gr_bulge, gr_disk):
    """g-r of bulge + disk, with bt the r-band light fraction of the bulge."""
    return -2.5 * np.log10(bt * 10 ** (-0.4 * gr_bulge) + (1 - bt) * 10 ** (-0.4 * gr_disk))


def abs_mag_r(log_mass, g_minus_r, ml_offset=0.0):
    """Rest-frame absolute r magnitude from stellar mass and colour (Bell et al. 2003)."""
    log_ml = -0.306 + 1.097 * g_minus_r + ml_offset
    return SUN_ABS_MAG_R - 2.5 * (log_mass - log_ml)


def k_correction_r(g_minus_r: float, z):
    return 1.5 * g_minus_r * z


def colour_offsets(g_minus_r: float, z: float, bands: tuple[str, ...]) -> np.ndarray:
    """Observed m_band - m_r for a component of rest-frame colour g-r at redshift z."""
    gr = g_minus_r * (1 + 2.5 * z)
    r_i = 0.12 + 0.37 * g_minus_r + 0.8 * g_minus_r * z
    u_g = 0.6 + 1.5 * g_minus_r
    i_z = 0.05 + 0.4 * g_minus_r
    table = {"u": gr + u_g, "g": gr, "r": 0.0, "i": -r_i, "z": -r_i - i_z}
    return np.array([table[b] for b in bands])


def _schechter(log_mass: np.ndarray) -> np.ndarray:
    x = 10 ** (log_mass - 10.66)
    return np.log(10) * np.exp(-x) * (3.96e-3 * x ** (1 - 0.35) + 0.79e-3 * x ** (1 - 1.47))


def _z_max(abs_mag, g_minus_r, r_mag_limit: float):
    """Redshift at which a galaxy reaches the flux limit (interpolated on the z grid)."""
    zg, dm, _, _ = distance_tables()
    abs_mag, g_minus_r = np.broadcast_arrays(
        np.asarray(abs_mag, float), np.asarray(g_minus_r, float)
    )
    out = np.empty(abs_mag.shape)
    for idx in np.ndindex(abs_mag.shape):
        apparent = abs_mag[idx] + dm + k_correction_r(g_minus_r[idx], zg)  # rises with z
        out[idx] = np.interp(r_mag_limit, apparent, zg)
    return out


@functools.lru_cache(maxsize=8)
def mass_cdf(mass_range, z_range, r_mag_limit, prior) -> tuple[np.ndarray, np.ndarray]:
    """Tabulated CDF of log M*: flat, or phi(M) V_max(M) for a galaxy of median colour.

    The scatter of luminosity at fixed mass is ignored in V_max; a floor of
    1e-3 of the full volume keeps masses whose median galaxy is too faint
    reachable (they are then the bright tail of their mass).
    """
    grid = np.linspace(mass_range[0], mass_range[1], 401)
    if prior == "flat":
        density = np.ones_like(grid)
    else:
        zg, _, _, dc = distance_tables()
        z_lo, z_hi = z_range
        z_max = np.full_like(grid, z_hi)
        if r_mag_limit is not None:
            bt = 1 / (1 + np.exp(-2.5 * (grid - 10.6)))
            gr_bulge, gr_disk = mean_colours(grid)
            colour = total_colour(bt, gr_bulge, np.minimum(gr_disk, gr_bulge))
            z_max = np.clip(_z_max(abs_mag_r(grid, colour), colour, r_mag_limit), z_lo, z_hi)
        volume = np.interp(z_max, zg, dc) ** 3 - np.interp(z_lo, zg, dc) ** 3
        full = np.interp(z_hi, zg, dc) ** 3 - np.interp(z_lo, zg, dc) ** 3
        density = _schechter(grid) * np.maximum(volume, 1e-3 * full)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    return grid, cdf / cdf[-1]


def draw_redshift(
    rng: np.random.Generator, abs_mag: float, g_minus_r: float, z_range, r_mag_limit
) -> float:
    """Uniform in comoving volume up to where the galaxy drops out of the sample.

    A galaxy too faint even at the lower redshift limit is placed there
    (below the flux limit) rather than redrawn, so every draw ends.
    """
    zg, _, _, dc = distance_tables()
    z_lo, z_hi = z_range
    if r_mag_limit is not None:
        z_hi = max(min(z_hi, float(_z_max(abs_mag, g_minus_r, r_mag_limit))), z_lo)
    v_lo, v_hi = np.interp(z_lo, zg, dc) ** 3, np.interp(z_hi, zg, dc) ** 3
    u = rng.uniform()
    return float(np.interp((v_lo + u * (v_hi - v_lo)) ** (1 / 3), dc, zg))


def apparent_r_mag(abs_mag: float, g_minus_r: float, z: float) -> float:
    zg, dm, _, _ = distance_tables()
    return abs_mag + float(np.interp(z, zg, dm)) + k_correction_r(g_minus_r, z)
