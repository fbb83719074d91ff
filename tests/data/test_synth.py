"""Synthetic galaxies: determinism, shapes, vote-tree consistency, and recoverable physics.

The physics tests measure the images the way an astronomer would (aperture
sums, curves of growth, rank correlations in bins) and compare with the truth
columns, so they fail if the images stop following the catalog.
"""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys

import galsim
import numpy as np
import pytest
from scipy.stats import spearmanr

from galaxy_hpc.data.synth import (
    QUESTION_COLUMNS,
    TRUTH_COLUMNS,
    VOTE_COLUMNS,
    SynthConfig,
    draw_galaxies,
    lupton_rgb,
    render_preview,
)

SEED = 2024
NUM = 240  # enough for binned rank correlations, ~2 s to draw at 64 px


@pytest.fixture(scope="module")
def noisy():
    return draw_galaxies(SynthConfig(), SEED, 0, NUM)


@pytest.fixture(scope="module")
def clean():
    return draw_galaxies(SynthConfig(add_noise=False), SEED, 0, NUM)


def _curve_of_growth_radius(image: np.ndarray, total: float, scale: float) -> float:
    """Radius of the circle about the stamp centre that holds half of `total`."""
    n = image.shape[-1]
    y, x = np.mgrid[:n, :n]
    r = np.hypot(x - (n - 1) / 2, y - (n - 1) / 2).ravel() * scale
    order = np.argsort(r, kind="stable")
    return float(np.interp(0.5 * total, np.cumsum(image.ravel()[order].astype(float)), r[order]))


# --- determinism -------------------------------------------------------------------------


def test_same_seed_same_bytes_and_batching_does_not_matter():
    cfg = SynthConfig(size=32)
    whole, cols = draw_galaxies(cfg, 7, 0, 10)
    again, cols_again = draw_galaxies(cfg, 7, 0, 10)
    first, cols_a = draw_galaxies(cfg, 7, 0, 4)
    rest, cols_b = draw_galaxies(cfg, 7, 4, 6)
    single, cols_single = draw_galaxies(cfg, 7, 8, 1)
    assert whole.tobytes() == again.tobytes()
    assert whole.tobytes() == np.concatenate([first, rest]).tobytes()
    assert single.tobytes() == whole[8:9].tobytes()
    for name in cols:
        assert np.array_equal(cols[name], np.concatenate([cols_a[name], cols_b[name]])), name
        assert np.array_equal(cols[name], cols_again[name]), name
        assert np.array_equal(cols[name][8:9], cols_single[name]), name


def _digest(images: np.ndarray, cols: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(images.tobytes())
    for name, values in cols.items():
        h.update(name.encode() + values.tobytes())
    return h.hexdigest()


_FRESH_PROCESS = """
import hashlib
from galaxy_hpc.data.synth import SynthConfig, draw_galaxies
images, cols = draw_galaxies(SynthConfig(size=32, output="uint8"), 7, 8, 2)
h = hashlib.sha256(images.tobytes())
for name, values in cols.items():
    h.update(name.encode() + values.tobytes())
print(h.hexdigest())
"""


def test_a_fresh_process_draws_the_same_bytes():
    """Another rank starts with empty caches (GalSim's Sersic tables, our mass CDF) and
    draws only its own slice; it must still reproduce these bytes."""
    out = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS], capture_output=True, text=True, check=True
    )
    draw_galaxies(SynthConfig(size=32), 7, 0, 1)  # warm the caches here in another order first
    assert out.stdout.strip() == _digest(
        *draw_galaxies(SynthConfig(size=32, output="uint8"), 7, 8, 2)
    )


def test_different_seeds_differ():
    cfg = SynthConfig(size=32)
    a, cols_a = draw_galaxies(cfg, 1, 0, 3)
    b, cols_b = draw_galaxies(cfg, 2, 0, 3)
    assert not np.array_equal(a, b)
    assert not np.any(cols_a["redshift"] == cols_b["redshift"])
    assert list(cols_a["id"]) == ["synth-1-0", "synth-1-1", "synth-1-2"]


def test_noise_only_changes_pixels(noisy, clean):
    """The noise has its own stream: truth and votes do not depend on add_noise."""
    for name in noisy[1]:
        assert np.array_equal(noisy[1][name], clean[1][name]), name
    residual = (noisy[0] - clean[0])[:, :, :8, :8]  # stamp corners
    faint = clean[0][:, :, :8, :8] < 1e-3  # sky-dominated: source noise negligible there
    for b, expected in enumerate((0.016, 0.027, 0.043)):  # SDSS g, r, i sky sigma, nmgy/pixel
        sky = residual[:, b][faint[:, b]]
        assert sky.size > 5000
        assert np.std(sky) == pytest.approx(expected, rel=0.05)
        assert abs(np.mean(sky)) < 5 * expected / np.sqrt(sky.size)  # sky-subtracted


# --- shapes, dtypes, columns -------------------------------------------------------------


def test_shapes_dtypes_and_columns(noisy):
    images, cols = noisy
    assert images.shape == (NUM, 3, 64, 64) and images.dtype == np.float32
    expected = [
        "id",
        "redshift",
        "log_stellar_mass",
        "flux_g",
        "flux_r",
        "flux_i",
        *TRUTH_COLUMNS[2:],
        *VOTE_COLUMNS,
    ]
    assert list(cols) == expected
    assert (
        len(VOTE_COLUMNS) == 37 and VOTE_COLUMNS[0] == "t01_smooth_or_features_a01_smooth_fraction"
    )
    assert VOTE_COLUMNS[-1] == "t11_arms_number_a37_cant_tell_fraction"
    assert cols["id"].dtype.kind == "U"
    for name in expected[1:]:
        assert cols[name].dtype == np.float64 and cols[name].shape == (NUM,), name
    assert 0.02 <= cols["redshift"].min() and cols["redshift"].max() <= 0.25
    assert 9.0 <= cols["log_stellar_mass"].min() and cols["log_stellar_mass"].max() <= 11.5
    assert set(np.unique(cols["bulge_sersic_n"])) <= {1.5, 2.5, 4.0}
    assert np.all((cols["disk_axis_ratio"] >= 0.1) & (cols["disk_axis_ratio"] <= 1.0))
    # bulges are redder than disks: bulge-dominated galaxies have redder g-r (and i-r)
    gr = -2.5 * np.log10(cols["flux_g"] / cols["flux_r"])
    assert (
        np.median(gr[cols["bulge_fraction"] > 0.8])
        > np.median(gr[cols["bulge_fraction"] < 0.2]) + 0.2
    )


def test_uint8_is_the_same_draw_stretched():
    rgb, cols = draw_galaxies(SynthConfig(size=32, output="uint8"), 3, 0, 6)
    flux, cols_f = draw_galaxies(SynthConfig(size=32), 3, 0, 6)
    assert rgb.shape == (6, 3, 32, 32) and rgb.dtype == np.uint8
    assert np.array_equal(cols["redshift"], cols_f["redshift"])
    again = lupton_rgb(flux, ("g", "r", "i"), q=8.0, stretch=0.2)
    assert np.abs(again.astype(int) - rgb.astype(int)).max() <= 1  # float32 rounding only
    centre = rgb[:, :, 12:20, 12:20].mean()
    assert 40 < centre < 250 and rgb[:, :, :4, :4].mean() < 40  # visible, unsaturated, dark sky


def test_zero_count_and_bad_arguments():
    images, cols = draw_galaxies(SynthConfig(size=16), 0, 5, 0)
    assert images.shape == (0, 3, 16, 16) and all(len(v) == 0 for v in cols.values())
    with pytest.raises(ValueError, match="seed"):
        draw_galaxies(SynthConfig(), -1, 0, 1)
    with pytest.raises(ValueError, match="count"):
        draw_galaxies(SynthConfig(), 0, 0, 2.5)


@pytest.mark.parametrize(
    "field, value",
    [
        ("size", 8),
        ("pixel_scale_arcsec", 0.0),
        ("bands", ("g", "x")),
        ("bands", ("r", "r")),
        ("psf_fwhm_arcsec", -1.0),
        ("psf_beta", 1.0),
        ("sky_noise", (0.1, 0.1)),
        ("output", "png"),
        ("redshift_range", (0.3, 0.1)),
        ("log_stellar_mass_range", (9.0,)),
        ("mass_prior", "salpeter"),
        ("sersic_indices", (1.0, 9.0)),
        ("num_volunteers", 0),
        ("r_mag_limit", "17.7"),
    ],
)
def test_config_rejects_mistakes_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SynthConfig(**{field: value})


def test_config_uint8_needs_three_bands_and_lists_become_tuples():
    with pytest.raises(ValueError, match="output"):
        SynthConfig(bands=("g", "r"), output="uint8")
    cfg = SynthConfig(bands=["r", "i"], redshift_range=[0.05, 0.1])
    assert cfg.bands == ("r", "i") and cfg.redshift_range == (0.05, 0.1)


# --- vote fractions ----------------------------------------------------------------------


def test_vote_fractions_follow_the_tree(noisy):
    cols = noisy[1]
    sums = {q: sum(cols[c] for c in names) for q, names in QUESTION_COLUMNS.items()}
    for q, total in sums.items():
        assert np.all(np.isclose(total, 1.0) | (total == 0.0)), q
    assert np.allclose(sums["t01_smooth_or_features"], 1.0)
    smooth = cols["t01_smooth_or_features_a01_smooth_fraction"]
    features = cols["t01_smooth_or_features_a02_features_or_disk_fraction"]
    edge_yes = cols["t02_edgeon_a04_yes_fraction"]
    spiral = cols["t04_spiral_a08_spiral_fraction"]
    assert np.all(sums["t07_rounded"][smooth == 0] == 0)
    for q in (
        "t02_edgeon",
        "t03_bar",
        "t04_spiral",
        "t05_bulge_prominence",
        "t09_bulge_shape",
        "t10_arms_winding",
    ):
        assert np.all(sums[q][features == 0] == 0), q
    assert np.all(sums["t09_bulge_shape"][edge_yes == 0] == 0)
    assert np.all(sums["t11_arms_number"][spiral == 0] == 0)
    assert np.all(sums["t08_odd_feature"][cols["t06_odd_a14_yes_fraction"] == 0] == 0)
    soft = (smooth > 0) & (smooth < 1)
    assert 0.3 < soft.mean() < 0.98  # finite volunteers: neither all certain nor all split


def test_votes_follow_shape(noisy):
    cols = noisy[1]
    bt, inc, hlr = cols["bulge_fraction"], cols["inclination_deg"], cols["half_light_radius_arcsec"]
    smooth = cols["t01_smooth_or_features_a01_smooth_fraction"]
    edge_yes = cols["t02_edgeon_a04_yes_fraction"]
    edge_on = (inc > 80) & (bt < 0.3) & (hlr > 1.0)
    face_on = (inc < 50) & (bt < 0.3)
    assert edge_on.sum() >= 5 and face_on.sum() >= 5
    assert edge_yes[edge_on].mean() > 0.7
    assert edge_yes[face_on].mean() < 0.1
    assert smooth[bt > 0.8].mean() > 0.8
    assert smooth[edge_on].mean() < 0.2
    rho = spearmanr(bt, smooth)[0]
    assert rho > 0.7, rho


# --- physics -----------------------------------------------------------------------------


def _binned_spearman(key: np.ndarray, x: np.ndarray, y: np.ndarray, num_bins: int) -> list[float]:
    edges = np.quantile(key, np.linspace(0, 1, num_bins + 1))
    out = []
    for lo, hi in itertools.pairwise(edges):
        sel = (key >= lo) & (key <= hi)
        out.append(spearmanr(x[sel], y[sel])[0])
    return out


def _measured_flux_trends(
    images: np.ndarray, cols: dict[str, np.ndarray]
) -> tuple[list[float], list[float]]:
    flux = images[:, 1].sum(axis=(1, 2), dtype=np.float64)  # r band, measured on the noisy image
    z, mass = cols["redshift"], cols["log_stellar_mass"]
    return _binned_spearman(z, mass, flux, 4), _binned_spearman(mass, z, flux, 4)


def test_image_flux_rises_with_mass_and_falls_with_redshift():
    """Without a flux limit (every mass at every z) the relations show cleanly."""
    cfg = SynthConfig(size=32, r_mag_limit=None, mass_prior="flat")
    at_fixed_z, at_fixed_mass = _measured_flux_trends(*draw_galaxies(cfg, 99, 0, 200))
    assert min(at_fixed_z) > 0.7, at_fixed_z  # measured 0.8-0.96 over seeds
    # Weaker: faint high-z dwarfs sink into the sky noise (measured -0.62 to -0.8).
    assert max(at_fixed_mass) < -0.5 and np.mean(at_fixed_mass) < -0.65, at_fixed_mass


def test_flux_trends_survive_the_flux_limit(noisy):
    """In the default (SDSS-like) sample the flux limit couples z and M*: near the limit,
    farther galaxies must be more massive to be seen, which dilutes the trend in wide
    highest-z bin (measured -0.05 to 0.5 there over seeds, 0.6-0.8 in the others); on
    average the trends must hold."""
    at_fixed_z, at_fixed_mass = _measured_flux_trends(*noisy)
    assert np.mean(at_fixed_z) > 0.4 and np.median(at_fixed_z) > 0.5, at_fixed_z
    assert max(at_fixed_mass) < -0.3 and np.mean(at_fixed_mass) < -0.55, at_fixed_mass


def test_flux_in_image_matches_truth_within_noise(noisy, clean):
    images, cols = noisy
    true = cols["flux_r"]
    fits = cols["half_light_radius_arcsec"] < 2.0  # galaxies whose light the 25" stamp holds
    assert fits.sum() > 80
    # Noiseless: all the light is in the stamp, minus a small spill-over past the edges.
    ratio_clean = clean[0][:, 1].sum(axis=(1, 2), dtype=np.float64) / true
    assert np.all(ratio_clean <= 1.0 + 1e-4)
    assert np.median(ratio_clean[fits]) > 0.995 and ratio_clean[fits].min() > 0.95
    # Noisy: the sum differs from the noiseless one by the expected noise (sky + source).
    sigma = np.sqrt(64 * 64 * 0.027**2 + true / 940.0)
    pull = (
        images[:, 1].sum(axis=(1, 2), dtype=np.float64)
        - clean[0][:, 1].sum(axis=(1, 2), dtype=np.float64)
    ) / sigma
    assert np.abs(pull).max() < 5.0 and 0.7 < pull.std() < 1.3
    measured = images[:, 1].sum(axis=(1, 2), dtype=np.float64)[fits]
    assert abs(np.median(measured / true[fits]) - 1) < 0.01


def test_half_light_radius_from_curve_of_growth_tracks_truth(clean):
    images, cols = clean
    hlr = cols["half_light_radius_arcsec"]
    sel = (hlr < 3.0) & (cols["disk_axis_ratio"] > 0.5)
    measured = np.array(
        [
            _curve_of_growth_radius(images[k, 1], images[k, 1].sum(), 0.396)
            for k in np.flatnonzero(sel)
        ]
    )
    assert spearmanr(measured, hlr[sel])[0] > 0.9
    # The PSF adds roughly in quadrature (exact for Gaussians; a few % high for these profiles).
    expected = np.hypot(hlr[sel], galsim.Moffat(beta=3.5, fwhm=1.4).half_light_radius)
    assert 0.97 < np.median(measured / expected) < 1.15


def test_image_shapes_follow_inclination_and_position_angle(clean):
    """Adaptive moments (GalSim HSM) of the noiseless r image against the truth columns."""
    images, cols = clean
    q, beta = np.empty(NUM), np.empty(NUM)
    for k in range(NUM):
        image = galsim.Image(images[k, 1].astype(np.float64), scale=0.396)
        shape = galsim.hsm.FindAdaptiveMom(image).observed_shape
        q[k], beta[k] = shape.q, shape.beta.deg % 180
    bt, inc = cols["bulge_fraction"], cols["inclination_deg"]
    edge_on = (inc > 80) & (bt < 0.3) & (cols["half_light_radius_arcsec"] > 1.0)
    assert np.median(q[edge_on]) < 0.5  # thin even after the seeing (measured 0.38)
    assert np.median(q[inc < 30]) > 0.85  # measured 0.96
    disky = bt < 0.3
    assert spearmanr(q[disky], cols["disk_axis_ratio"][disky])[0] > 0.9  # measured 0.98
    # Position angle: counter-clockwise from +x with images[k, b, y, x] (measured to 0.05 deg).
    elongated = q < 0.6
    offset = (beta - cols["position_angle_deg"] + 90) % 180 - 90
    assert elongated.sum() > 20 and np.abs(offset[elongated]).max() < 2.0


def test_half_light_radius_is_exact_without_seeing():
    """With a negligible PSF and fine pixels, face-on galaxies' radius equals the truth."""
    cfg = SynthConfig(
        size=128,
        pixel_scale_arcsec=0.1,
        psf_fwhm_arcsec=0.1,
        add_noise=False,
        redshift_range=(0.1, 0.25),
    )
    images, cols = draw_galaxies(cfg, 8, 0, 40)
    face_on = np.flatnonzero(cols["inclination_deg"] < 35)
    assert len(face_on) >= 5
    for k in face_on:
        measured = _curve_of_growth_radius(images[k, 1], cols["flux_r"][k], 0.1)
        assert measured == pytest.approx(cols["half_light_radius_arcsec"][k], rel=0.03)


def test_render_preview_writes_png(tmp_path, noisy):
    from PIL import Image

    path = render_preview(noisy[0][:6], tmp_path / "grid.png", labels=[str(i) for i in range(6)])
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 64 * 2
    with pytest.raises(ValueError, match="labels"):
        render_preview(noisy[0][:6], tmp_path / "x.png", labels=["a"])
