"""statmorph measurements recover known parameters of GalSim galaxies, and the real vs
generated comparison is the Wasserstein distance of what was measured."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr, wasserstein_distance

from galaxy_hpc.evaluate.morphometry import PARAMETERS, measure
from galaxy_hpc.evaluate.physics import compare
from hpc.store import open_store


def sersic(n, q, *, re=6.0, flux=1000.0, size=64, clump=0.0, seed=0):
    """A Sersic galaxy (half-light radius re pixels, axis ratio q) seen through a 1.5-pixel
    Gaussian PSF with sky noise sigma 0.02, optionally with an off-centre clump holding
    `clump` of the flux."""
    import galsim

    galaxy = galsim.Sersic(n=n, half_light_radius=re, flux=flux).shear(q=q, beta=0 * galsim.degrees)
    if clump:
        galaxy = galaxy + galsim.Gaussian(sigma=1.5, flux=clump * flux).shift(7, 4)
    observed = galsim.Convolve(galaxy, galsim.Gaussian(fwhm=1.5))
    image = observed.drawImage(nx=size, ny=size, scale=1.0).array
    noise = np.random.default_rng(seed).normal(0.0, 0.02, image.shape)
    hlr = observed.drawImage(nx=4 * size, ny=4 * size, scale=0.25).calculateHLR()
    return (image + noise)[None, None], hlr


@pytest.fixture(scope="module")
def known():
    cases = {"disk": sersic(1.0, 1.0), "inclined disk": sersic(1.0, 0.5),
             "bulge": sersic(4.0, 1.0), "disk with clump": sersic(1.0, 1.0, clump=0.15)}
    out = {}
    for name, (image, hlr) in cases.items():
        values, flags = measure(image)
        out[name] = {**dict(zip(PARAMETERS, values[0])), "flag": flags[0], "true_hlr": hlr}
    return out


def test_statmorph_recovers_known_sersic_parameters(known):
    disk, inclined, bulge, clumpy = (known[k] for k in ("disk", "inclined disk", "bulge",
                                                        "disk with clump"))
    assert all(v["flag"] <= 1 for v in known.values())
    # Flux within 2 Petrosian radii (eta 0.2): ~99% of an exponential disk, ~82% of a de
    # Vaucouleurs profile (Graham et al. 2005, PASA 22, 118), within 5% (the bulge's far
    # wings fall outside the 64-pixel stamp).
    assert disk["total_flux"] == pytest.approx(0.99 * 1000, rel=0.02)
    assert bulge["total_flux"] == pytest.approx(0.82 * 1000, rel=0.05)
    # Half-light radius of a disk: that of the PSF-convolved profile, within 5%.
    assert disk["half_light_radius"] == pytest.approx(disk["true_hlr"], rel=0.05)
    # Concentration 5 log10(r80/r20) of an exponential: 2.8 analytically, within 6%;
    # a de Vaucouleurs profile is clearly more concentrated, with a higher Gini and a more
    # negative M20 (Lotz et al. 2004).
    assert disk["concentration"] == pytest.approx(2.8, rel=0.06)
    assert bulge["concentration"] > disk["concentration"] + 0.8
    assert bulge["gini"] > disk["gini"] + 0.05 and bulge["m20"] < disk["m20"] - 0.15
    # Ellipticity 1 - b/a: 0 for a round galaxy, 1 - q = 0.5 for the inclined one (+-0.03).
    assert abs(disk["ellipticity"]) < 0.03
    assert inclined["ellipticity"] == pytest.approx(0.5, abs=0.03)
    # Asymmetry: ~0 for symmetric profiles, clearly positive with an off-centre clump.
    assert abs(disk["asymmetry"]) < 0.02 and abs(bulge["asymmetry"]) < 0.02
    assert clumpy["asymmetry"] > 0.1


def test_synthetic_catalog_truth_is_recovered(float_stores):
    """GalSim bulge+disk galaxies of the synth store, whose true fluxes and sizes are columns."""
    store = open_store(float_stores["real"])
    picked = np.arange(0, 12)
    values, flags = measure(store.read_images_at(picked))
    usable = np.isfinite(values).all(axis=1)
    assert usable.mean() >= 0.9  # at most one of 12 flagged
    truth = {name: store.read_column(name)[picked] for name in
             ("flux_g", "flux_r", "flux_i", "half_light_radius_arcsec")}
    true_flux = truth["flux_g"] + truth["flux_r"] + truth["flux_i"]
    ratio = values[usable, 0] / true_flux[usable]
    # Petrosian fluxes of bulge+disk mixtures: 82-99% of the total; stamp edges cut a few more.
    assert 0.85 <= np.median(ratio) <= 1.0 and ratio.min() > 0.6
    size_rho = spearmanr(values[usable, 1], truth["half_light_radius_arcsec"][usable]).statistic
    assert size_rho > 0.8


def test_comparison_is_the_wasserstein_distance_of_what_was_measured():
    rng = np.random.default_rng(0)
    real = rng.normal(1.0, 0.5, (200, len(PARAMETERS)))
    generated = rng.normal(1.3, 0.5, (150, len(PARAMETERS)))
    real[:10, 2] = np.nan  # not measured: left out, and counted
    out = compare(real, generated, num_bins=12)
    for j, name in enumerate(PARAMETERS):
        r = real[:, j][np.isfinite(real[:, j])]
        p = out[name]
        assert p["wasserstein"] == pytest.approx(wasserstein_distance(r, generated[:, j]),
                                                 rel=1e-12)
        assert p["wasserstein_std"] == pytest.approx(p["wasserstein"] / np.std(r), rel=1e-12)
        assert sum(p["histogram"]["real"]) == p["num_real"] == len(r)
        assert sum(p["histogram"]["generated"]) == p["num_generated"] == 150
        assert len(p["histogram"]["edges"]) == 13
    assert out["concentration"]["num_real"] == 190


def test_physics_over_stores_split_over_galaxies(evaluated_run):
    result = json.loads((evaluated_run / "physics.json").read_text())
    assert result["num_measured"] == {"real": 6, "generated": 6}
    assert result["measured_fraction"]["real"] >= 0.8
    assert set(result["parameters"]) == set(PARAMETERS)
    # The generated population was drawn with a wider PSF: its galaxies look larger.
    size = result["parameters"]["half_light_radius"]
    assert size["median_generated"] > size["median_real"]
