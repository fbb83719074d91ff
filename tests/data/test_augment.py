"""Galaxy augmentation: rotations keep a centred galaxy centred and its flux, flips are
exact, corners hold sky rather than black, and everything follows the generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galaxy_hpc.data.augment import (
    AugmentParams,
    GalaxyAugment,
    rotate,
    rotate_right_angles,
)


def galaxy(size: int = 32, *, x0: float | None = None, y0: float | None = None,
           sky: float = 0.0, q: float = 0.5, pa_deg: float = 30.0) -> torch.Tensor:
    """An elongated Gaussian galaxy (1, 3, size, size) at (x0, y0), centre by default."""
    c = (size - 1) / 2
    x0 = c if x0 is None else x0
    y0 = c if y0 is None else y0
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    pa = np.radians(pa_deg)
    u = (x - x0) * np.cos(pa) + (y - y0) * np.sin(pa)
    v = (-(x - x0) * np.sin(pa) + (y - y0) * np.cos(pa)) / q
    profile = 100.0 * np.exp(-0.5 * (u**2 + v**2) / 3.0**2) + sky
    return torch.from_numpy(np.stack([profile, 0.5 * profile, 2 * profile])[None]).float()


def centroid(image: torch.Tensor) -> tuple[float, float]:
    band = image[0, 0].double()
    y, x = torch.meshgrid(torch.arange(band.shape[0]), torch.arange(band.shape[1]),
                          indexing="ij")
    total = band.sum()
    return float((band * x).sum() / total), float((band * y).sum() / total)


@pytest.mark.parametrize("angle", [0.0, 17.0, 45.0, 90.0, 133.0, 271.5])
def test_rotation_keeps_a_centred_galaxy_centred_and_its_flux(angle):
    image = galaxy(32)
    out = rotate(image, [angle])
    cx, cy = centroid(out)
    assert abs(cx - 15.5) < 0.05 and abs(cy - 15.5) < 0.05, (cx, cy)
    np.testing.assert_allclose(out.sum(dim=(-1, -2)), image.sum(dim=(-1, -2)), rtol=0.01)


def test_rotation_is_counter_clockwise_with_y_up():
    """FITS convention (image[c, y, x], y upward): +x rotated by 90 degrees goes to +y."""
    image = galaxy(33, x0=24.0, y0=16.0, q=1.0)  # 8 px right of the centre (16, 16)
    ox, oy = centroid(image)
    expected = (16.0 - (oy - 16.0), 16.0 + (ox - 16.0))
    assert expected == pytest.approx((16.0, 24.0), abs=0.05)
    assert centroid(rotate(image, [90.0])) == pytest.approx(expected, abs=1e-3)
    assert centroid(rotate_right_angles(image, 1)) == pytest.approx(expected, abs=1e-6)


def test_right_angles_are_exact_and_agree_with_the_bilinear_path():
    image = torch.rand(2, 3, 16, 16)
    for quarters in (1, 2, 3):
        exact = rotate_right_angles(image, quarters)
        assert torch.equal(exact, torch.from_numpy(
            np.rot90(image.numpy(), quarters, axes=(-1, -2)).copy()))
        torch.testing.assert_close(rotate(image, [90.0 * quarters] * 2), exact,
                                   atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="square"):
        rotate_right_angles(torch.rand(1, 1, 8, 10), 1)


def test_flips_are_exact():
    image = torch.rand(3, 3, 8, 12)
    params = [AugmentParams(hflip=True), AugmentParams(vflip=True),
              AugmentParams(hflip=True, vflip=True)]
    out = GalaxyAugment().apply(image, params)
    assert torch.equal(out[0], image[0].flip(-1))
    assert torch.equal(out[1], image[1].flip(-2))
    assert torch.equal(out[2], image[2].flip(-1).flip(-2))
    assert torch.equal(image, image.clone())  # the input is not modified


def test_corners_hold_sky_not_black():
    """Reflection at the edges: a rotated cutout's corners continue the sky."""
    noise = torch.from_numpy(np.random.default_rng(0).normal(10.0, 1.0, (1, 1, 32, 32))).float()
    out = rotate(noise, [45.0])
    corner = out[0, 0, :4, :4]
    assert corner.min() > 5.0 and abs(float(corner.mean()) - 10.0) < 1.0


def test_non_square_images_rotate_as_rotations():
    image = galaxy(32)[..., 4:28, :]  # 24 x 32, galaxy still at the centre
    cx, cy = centroid(rotate(image, [60.0]))
    assert abs(cx - 15.5) < 0.1 and abs(cy - 11.5) < 0.1


def test_deterministic_given_a_generator_and_always_three_draws():
    image = galaxy(32).repeat(4, 1, 1, 1)
    augment = GalaxyAugment()
    a = augment(image, np.random.default_rng(7))
    b = augment(image, np.random.default_rng(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, augment(image, np.random.default_rng(8)))
    for settings in (GalaxyAugment(), GalaxyAugment("none", False, False),
                     GalaxyAugment("right_angles")):
        rng = np.random.default_rng(3)
        settings.sample(rng)
        after = rng.random()
        rng = np.random.default_rng(3)
        rng.random(3)
        assert rng.random() == after


def test_sampled_parameters_follow_the_settings():
    rng = np.random.default_rng(0)
    right = [GalaxyAugment("right_angles").sample(rng) for _ in range(200)]
    assert {p.angle_deg for p in right} == {0.0, 90.0, 180.0, 270.0}
    free = [GalaxyAugment().sample(rng) for _ in range(200)]
    angles = np.array([p.angle_deg for p in free])
    assert angles.min() >= 0 and angles.max() < 360 and np.ptp(angles) > 300
    assert 60 < sum(p.hflip for p in free) < 140 and 60 < sum(p.vflip for p in free) < 140
    none = GalaxyAugment("none", hflip=False, vflip=False).sample(rng)
    assert none == AugmentParams()
    with pytest.raises(ValueError, match="rotation"):
        GalaxyAugment(rotation="random")


def test_single_image_and_uint8_input():
    image = (galaxy(16)[0] * 2).clamp(0, 255).to(torch.uint8)
    out = GalaxyAugment()(image, np.random.default_rng(0))
    assert out.shape == image.shape and out.dtype == torch.float32


def test_params_from_uniforms_are_what_sample_draws():
    """StoreDataset hands GalaxyAugment its own (counter-based) draws: params(u) maps them
    exactly as sample() maps its generator's three draws."""
    for settings in (GalaxyAugment(), GalaxyAugment("right_angles", vflip=False),
                     GalaxyAugment("none", hflip=False)):
        u = np.random.default_rng(5).random((50, 3))
        rng = np.random.default_rng(5)
        assert settings.params(u) == [settings.sample(rng) for _ in range(50)]
    assert GalaxyAugment().params(np.empty((0, 3))) == []
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        GalaxyAugment().params(np.zeros((4, 2)))


def test_rotation_grid_is_the_same_in_float32_and_float64():
    image = galaxy(24)
    angles = [33.0]
    single = rotate(image, angles, hflips=[True], vflips=[False])
    double = rotate(image.double(), angles, hflips=[True], vflips=[False])
    assert single.dtype == torch.float32 and double.dtype == torch.float64
    torch.testing.assert_close(double.float(), single, atol=1e-4, rtol=1e-5)
