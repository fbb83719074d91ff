"""Pixel noise read off images, and noise added up to a target (galaxy_hpc.data.pixel_noise):
Gaussian noise of known sigma is read back on a galaxy with a sky gradient; a noise-free
image reads ~0; the noise added brings an image to the target and no further, is the same
in any batching, and nothing is added to an image already as noisy."""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_hpc.data.pixel_noise import (add_matching_noise, noise_line, noise_report,
                                         noise_to_add, pixel_noise, survey_noise)


def smooth_galaxies(n: int, side: int = 32, bands: int = 3) -> np.ndarray:
    """Round exponential disks of growing size on a sky that rises across the image."""
    yy, xx = np.mgrid[0:side, 0:side] - (side - 1) / 2
    r = np.hypot(yy, xx)
    disks = np.stack([np.exp(-r / (1.5 + 0.04 * k)) for k in range(n)])  # 1.5-3 px scale
    gradient = 0.002 * xx  # 0.06 across the image: a sloped sky, not noise
    return np.repeat((disks + gradient)[:, None], bands, axis=1)


def test_known_gaussian_noise_is_read_back_per_band_and_smooth_light_reads_near_zero():
    rng = np.random.default_rng(0)
    clean = smooth_galaxies(40)
    sigma = np.array([0.01, 0.03, 0.05])
    noisy = clean + rng.normal(size=clean.shape) * sigma[None, :, None, None]
    found = survey_noise(pixel_noise(noisy))
    assert found == pytest.approx(sigma, rel=0.05)
    assert (pixel_noise(clean) < 0.002).all()  # the gradient and the disks' wings: ~0
    with pytest.raises(ValueError, match="N, C, H, W"):
        pixel_noise(clean[0])


def test_matched_noise_reaches_the_target_and_no_further():
    rng = np.random.default_rng(1)
    clean = smooth_galaxies(40)
    target = np.array([0.02, 0.02, 0.04])
    matched, added = add_matching_noise(clean, target, seed=3)
    assert survey_noise(pixel_noise(matched)) == pytest.approx(target, rel=0.06)
    assert survey_noise(added) == pytest.approx(target, rel=0.01)
    # Already noisier than the target in band 2, half of it in band 0: quadrature deficit.
    own = np.array([[0.01, 0.03, 0.05]])
    assert noise_to_add(own, target)[0] == pytest.approx([np.sqrt(0.02**2 - 0.01**2), 0, 0])
    noisy = clean + rng.normal(size=clean.shape) * 0.05
    again, none_added = add_matching_noise(noisy, target, seed=3)
    assert (none_added == 0).all() and np.array_equal(again, noisy)


def test_the_noise_of_an_image_depends_on_its_index_not_its_batch():
    clean = smooth_galaxies(10)
    target = np.array([0.02, 0.02, 0.02])
    whole, _ = add_matching_noise(clean, target, seed=7)
    first, _ = add_matching_noise(clean[:4], target, seed=7)
    rest, _ = add_matching_noise(clean[4:], target, seed=7, first_index=4)
    assert np.array_equal(whole, np.concatenate([first, rest]))
    other, _ = add_matching_noise(clean, target, seed=8)
    assert not np.allclose(whole, other)


def test_the_report_states_both_levels_and_what_was_added():
    real = np.array([[0.02, 0.03], [0.022, 0.031], [0.018, 0.029]])
    generated = np.array([[0.001, 0.002], [0.001, 0.002]])
    matched = noise_report(real, generated, noise_to_add(generated, survey_noise(real)))
    assert matched["matched"] and matched["real"] == pytest.approx([0.02, 0.03])
    assert matched["added"] == pytest.approx(np.sqrt(np.array([0.02, 0.03]) ** 2
                                                     - np.array([0.001, 0.002]) ** 2))
    assert "added to generated images" in noise_line(matched)
    drawn = noise_report(real, generated, None)
    assert drawn["added"] is None and "not matched" in noise_line(drawn)


def test_a_band_the_real_store_has_no_reading_of_gets_no_noise():
    own = np.array([[0.001, 0.001]])
    assert noise_to_add(own, np.array([0.02, np.nan]))[0] == pytest.approx(
        [np.sqrt(0.02**2 - 0.001**2), 0.0])
