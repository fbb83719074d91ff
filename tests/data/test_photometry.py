"""Photometry on images whose flux and size are known, and the consistency metric."""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_hpc.data.photometry import consistency, measure, sky_level


def gaussian_galaxies(fluxes, sigmas, *, size=48, sky=10.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    images = []
    for flux, sigma in zip(fluxes, sigmas):
        profile = np.exp(-(yy**2 + xx**2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)
        band = flux * profile + sky + noise * rng.standard_normal((size, size))
        images.append(np.stack([band, band * 0.5]))  # two bands
    return np.array(images)


def test_flux_and_half_light_radius_of_gaussians():
    fluxes = np.array([100.0, 400.0, 1600.0])
    sigmas = np.array([2.0, 3.0, 4.0])
    images = gaussian_galaxies(fluxes, sigmas)
    photometry = measure(images)
    # Two bands (1 + 0.5) and nearly all the light inside the aperture.
    np.testing.assert_allclose(photometry.total_flux, 1.5 * fluxes, rtol=0.01)
    # A circular Gaussian's half-light radius is sigma sqrt(2 ln 2).
    np.testing.assert_allclose(photometry.half_light_radius, sigmas * np.sqrt(2 * np.log(2)),
                               rtol=0.06)
    np.testing.assert_allclose(photometry.centre, 23.5, atol=0.05)


def test_sky_is_the_border_median_per_band():
    images = gaussian_galaxies([100.0], [2.0], sky=7.0)
    np.testing.assert_allclose(sky_level(images)[0], [7.0, 3.5], atol=1e-3)
    with pytest.raises(ValueError, match="no inside"):
        sky_level(images, border=24)


def test_consistency_sees_a_trend_and_its_reversal_per_bin():
    rng = np.random.default_rng(1)
    mass = rng.uniform(9, 11.5, 300)
    redshift = rng.uniform(0.02, 0.2, 300)
    # Brighter with mass, fainter with redshift: per redshift bin the mass trend is clean.
    flux = 10 ** (0.8 * mass) / redshift**2
    good = consistency(mass, flux, by=redshift, num_bins=3)
    assert good.rho > 0.3 and all(r > 0.5 for r in good.bin_rho)
    assert sum(good.bin_counts) == 300 and len(good.bin_edges) == 4
    bad = consistency(mass, 1.0 / flux, by=redshift)
    assert all(r < -0.5 for r in bad.bin_rho)
    flat = consistency(mass, np.ones_like(mass))
    assert np.isnan(flat.rho) and flat.to_dict()["num_objects"] == 300


def test_noisy_galaxies_keep_flux_and_size_within_ten_percent():
    sigmas = np.array([1.5, 2.0, 3.0, 4.0])
    for seed in range(3):
        photometry = measure(gaussian_galaxies(100 * np.ones(4), sigmas, size=64, noise=0.1,
                                               seed=seed))
        np.testing.assert_allclose(photometry.total_flux, 150.0, rtol=0.1)
        np.testing.assert_allclose(photometry.half_light_radius,
                                   sigmas * np.sqrt(2 * np.log(2)), rtol=0.1)
