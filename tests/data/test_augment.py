"""Galaxy augmentation: rotations keep a centred galaxy centred and its flux, flips are
exact, corners hold sky rather than black (their own, so photometry reads a rotated
cutout as it read the original), and everything follows the generator."""

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
    """A rotated cutout's corners, whose sources lie beyond its edge, hold sky."""
    noise = torch.from_numpy(np.random.default_rng(0).normal(10.0, 1.0, (1, 1, 32, 32))).float()
    out = rotate(noise, [45.0])
    corner = out[0, 0, :4, :4]
    assert corner.min() > 5.0 and abs(float(corner.mean()) - 10.0) < 1.0


@pytest.mark.parametrize("hflip,vflip", [(False, False), (True, False), (False, True),
                                         (True, True)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_pixels_whose_source_lies_beyond_the_cutout_keep_their_own_flipped_value(
        hflip, vflip, dtype):
    """float32/64 build the grid in numpy (complex), other dtypes in torch: both keep them."""
    image = torch.rand(1, 3, 32, 32).to(dtype)
    out = rotate(image, [45.0], hflips=[hflip], vflips=[vflip])
    flipped = image
    if hflip:
        flipped = flipped.flip(-1)
    if vflip:
        flipped = flipped.flip(-2)
    y, x = np.mgrid[0:32, 0:32]
    radius = np.hypot(y - 15.5, x - 15.5)
    # At 45 degrees the corner pixels (more than 21.6 px from the centre, on the
    # diagonals) take their sources from the axes, more than 16 px out: beyond the edge;
    # pixels within 15 px of the centre have theirs inside the cutout.
    corners = torch.from_numpy(radius > 16 * np.sqrt(2) - 1.0)
    inside = torch.from_numpy(radius < 15.0)
    assert torch.equal(out[0][:, corners], flipped[0][:, corners])
    assert not torch.allclose(out[0][:, inside], flipped[0][:, inside])


def _reflect_rotated(images: torch.Tensor, angle_deg: float) -> torch.Tensor:
    """The cutout rotated with mirrored corners (reflect padding, the old fill)."""
    a = np.radians(angle_deg)
    theta = torch.tensor([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0]],
                         dtype=torch.float32).expand(len(images), 2, 3)
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, padding_mode="reflection",
                                           align_corners=False)


def test_rotation_keeps_the_measured_size_and_flux_of_a_galaxy_that_fills_its_cutout():
    """What photometry reads off a rotated cutout is what it read before: no light from
    near the galaxy is mirrored into the border ring the sky is taken from. (Mirrored
    corners read these galaxies ~0.2 px smaller and ~0.03 dex fainter.)"""
    from galaxy_hpc.data.photometry import measure

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:32, 0:32] - 15.5
    radius = np.hypot(y, x)
    # Exponential disks of half-light radius ~5 px in 32 px cutouts, with sky noise: the
    # low-redshift third of the synthetic flux set at 32 px.
    images = np.stack([np.exp(-radius / s) * 50.0 + rng.normal(0.0, 0.5, (3, 32, 32))
                       for s in rng.uniform(3.0, 4.0, 64)]).astype(np.float32)
    before = measure(images)
    after = measure(rotate(torch.from_numpy(images), [45.0] * 64).numpy())
    mirrored = measure(_reflect_rotated(torch.from_numpy(images), 45.0).numpy())
    size_shift = np.median(after.half_light_radius - before.half_light_radius)
    flux_shift = np.median(np.log10(after.total_flux / before.total_flux))
    assert abs(size_shift) < 0.03 and abs(flux_shift) < 0.006, (size_shift, flux_shift)
    # The same galaxies with mirrored corners: the bias this guards against is real here.
    assert np.median(mirrored.half_light_radius - before.half_light_radius) < -0.1
    assert np.median(np.log10(mirrored.total_flux / before.total_flux)) < -0.015


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
