"""The GAN's fidelity targets and the generator's share of the auxiliary regression.

The verdict (galaxy_hpc.models.gan.fidelity) on hand-made galaxies whose flux and size
are known: a generator that gives back the real images meets both targets; one whose
galaxies are all twice as bright follows the trend (ranks unchanged) but fails the flux
cells and only those; one whose galaxies follow the mass with none of the data's
scatter over-states the trend and fails it; a sparse cell is left out of the verdict.
Validation draws each held-out row from its own seed, so batching cannot move the
score. The knobs against galaxies too alike: generator_aux_weight weighs G's auxiliary term
alone (0 removes it from G's gradient and leaves D's untouched); diversity_weight pairs
fakes that share a condition and pixel noise and rewards their distance per latent
distance; minibatch_std_group gives D the spread of each group of images, groups never
mixing the real and fake halves of its batch. What D sees: each band also in linear flux
(discriminator_flux_view), a fake with the survey's white noise (fake_sky_noise), and
aperture fluxes of each image beside the conditions (discriminator_photometry).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from galaxy_hpc.models.gan.config import FidelitySection, GanModelConfig

NAMES = ["redshift", "log_stellar_mass"]


def galaxies(flux: np.ndarray, sigma: np.ndarray, side: int = 24) -> np.ndarray:
    """Round Gaussians of known total flux and width on a sky of 0.5, 3 bands."""
    yy, xx = np.mgrid[0:side, 0:side] - (side - 1) / 2
    r2 = (yy**2 + xx**2)[None]
    light = flux[:, None, None] * np.exp(-r2 / (2 * sigma[:, None, None] ** 2)) \
        / (2 * np.pi * sigma[:, None, None] ** 2)
    return (0.5 + np.repeat(light[:, None] / 3, 3, axis=1)).astype(np.float32)


@pytest.fixture(scope="module")
def sample():
    """240 galaxies: flux rises with mass with 0.3 dex of scatter, size with mass."""
    rng = np.random.default_rng(0)
    conditions = np.stack([rng.uniform(0.05, 0.2, 240), rng.uniform(9.5, 11.5, 240)], axis=1)
    trend = 100 * 10 ** (0.8 * (conditions[:, 1] - 10)) * (0.05 / conditions[:, 0]) ** 0.5
    scatter = 10 ** rng.normal(0.0, 0.3, 240)
    sigma = 1.0 + 0.8 * (conditions[:, 1] - 9.5) + rng.uniform(0.0, 0.5, 240)
    return conditions, trend, scatter, sigma


def judge(generated, real, conditions, **settings):
    from galaxy_hpc.models.gan.fidelity import judge as run

    section = FidelitySection(grid_bins=2, min_per_cell=20, num_splits=20, num_bootstrap=50,
                              **settings)
    return run(generated, real, conditions, NAMES, section, requested="log_stellar_mass",
               by="redshift", num_bins=2)


def test_the_real_images_themselves_meet_both_targets(sample):
    from galaxy_hpc.models.gan.fidelity import figures, summary_lines

    conditions, trend, scatter, sigma = sample
    real = galaxies(trend * scatter, sigma)
    # Noise-free by construction: matched, their float32 rounding would reorder ties.
    found = judge(real.copy(), real, conditions, match_noise=False)
    assert found["met"] and found["trends_met"] and found["cells_met"] == {
        "log_flux": True, "half_light_radius": True}
    assert all(t["difference"] == [0.0, 0.0] for t in found["trends"])
    assert all(r == 0.0 for rs in found["w1_over_floor"].values() for r in rs)
    assert len(found["fidelity"]["cells"]) == 4
    json.dumps(found, allow_nan=False)
    assert "targets MET" in summary_lines(found)[0]
    quoted = figures(found)
    assert len(quoted["rho_flux"]["generated"]) == 2 and set(quoted["w1_over_floor"]) == {
        "log_flux", "half_light_radius"}


def test_a_store_too_small_for_any_cell_says_so_not_just_not_met(sample):
    """A user's first 64-galaxy store: every cell sparse read "[sparse, ...]: not met", as
    though the generator had failed; the line now names what to change."""
    from galaxy_hpc.models.gan.fidelity import summary_lines

    conditions, trend, scatter, sigma = sample
    real = galaxies(trend * scatter, sigma)[:40]
    found = judge(real.copy(), real, conditions[:40], match_noise=False)
    assert not found["met"] and found["cells_met"] == {"log_flux": False,
                                                       "half_light_radius": False}
    assert all(r is None for rs in found["w1_over_floor"].values() for r in rs)
    cells = [line for line in summary_lines(found) if "W1/floor" in line]
    assert len(cells) == 2 and all("no cell holds model.fidelity.min_per_cell" in line
                                   and "model.consistency.report_num_samples" in line
                                   for line in cells)


def test_twice_as_bright_follows_the_trend_but_fails_the_flux_cells_only(sample):
    conditions, trend, scatter, sigma = sample
    real = galaxies(trend * scatter, sigma)
    found = judge(galaxies(2 * trend * scatter, sigma), real, conditions)
    assert found["trends"][0]["measured"] == "total_flux" and found["trends"][0]["met"]
    assert found["cells_met"] == {"log_flux": False, "half_light_radius": True}
    assert not found["met"]
    assert all(r > 1.5 for r in found["w1_over_floor"]["log_flux"]), found["w1_over_floor"]


def test_galaxies_without_the_data_scatter_over_state_the_trend(sample):
    conditions, trend, scatter, sigma = sample
    real = galaxies(trend * scatter, sigma)
    found = judge(galaxies(trend, sigma), real, conditions)
    flux = found["trends"][0]
    assert all(g > r + 0.1 for g, r in zip(flux["generated"]["bin_rho"], flux["real"]["bin_rho"]))
    assert not flux["met"] and not found["met"]
    # The bootstrap intervals say how far apart the two trends are.
    assert all(lo > hi for (lo, _), (_, hi) in zip(flux["generated"]["bin_rho_interval"],
                                                    flux["real"]["bin_rho_interval"]))


def test_sparse_cells_are_left_out_and_no_judged_cell_is_no_pass(sample):
    from galaxy_hpc.data.fidelity import bin_index, quantile_edges
    from galaxy_hpc.models.gan.fidelity import judge as run

    def cells(conditions):
        return sum(bin_index(conditions[:, k], quantile_edges(conditions[:, k], 2))
                   * 2 ** (1 - k) for k in range(2))

    conditions, trend, scatter, sigma = sample
    # 15 fewer galaxies of low redshift and low mass: that cell the emptiest by far.
    keep = ~((cells(conditions) == 0) & (np.cumsum(cells(conditions) == 0) <= 15))
    conditions = conditions[keep]
    real = galaxies((trend * scatter)[keep], sigma[keep])
    counts = sorted(np.bincount(cells(conditions), minlength=4))
    assert counts[0] < counts[1]
    # min_per_cell above the emptiest cell only: that cell is too sparse, the others judged.
    section = FidelitySection(grid_bins=2, min_per_cell=int(counts[1]), num_splits=20,
                              num_bootstrap=50)
    found = run(real.copy(), real, conditions, NAMES, section, requested="log_stellar_mass",
                by="redshift", num_bins=2)
    assert found["w1_over_floor"]["log_flux"].count(None) == 1 and found["met"]
    few = judge(real[:40].copy(), real[:40], conditions[:40])
    assert few["w1_over_floor"]["log_flux"] == [None] * 4 and not few["met"]


def test_config_fields_are_checked():
    assert GanModelConfig().g_aux_weight == 1.0
    assert GanModelConfig(aux_weight=0.5).g_aux_weight == 0.5
    assert GanModelConfig(aux_weight=0.5, generator_aux_weight=0.0).g_aux_weight == 0.0
    with pytest.raises(ValueError, match="generator_aux_weight"):
        GanModelConfig(generator_aux_weight=-1.0)
    with pytest.raises(ValueError, match="fidelity.judged"):
        FidelitySection(judged=["mass"])
    with pytest.raises(ValueError, match="max_w1_over_floor"):
        FidelitySection(max_w1_over_floor=0.0)


def test_discriminator_condition_layers_let_the_logit_bend_with_the_conditions():
    """A linear projection makes D's logit affine in the conditions for a fixed image: the
    logit at the midpoint of two conditions is their mean. An MLP projection
    (model.discriminator_condition_layers) is not bound to that; 0 keeps the old layout."""
    from galaxy_hpc.models.gan.networks import Discriminator

    images = torch.randn(4, 3, 16, 16)
    low, high = torch.tensor([[-1.0, -1.0]] * 4), torch.tensor([[1.5, 0.5]] * 4)

    def bend(layers):
        torch.manual_seed(0)
        d = Discriminator(image_shape=(3, 16, 16), num_conditions=2, channels=[8, 16],
                          spectral_norm=True, condition_layers=layers).eval()
        with torch.no_grad():
            logit = [d(images, c)[0] for c in (low, (low + high) / 2, high)]
        return d, (logit[1] - (logit[0] + logit[2]) / 2).abs().max().item()

    linear, straight = bend(0)
    assert straight < 1e-5 and "project.parametrizations.weight.original" in linear.state_dict()
    mlp, bent = bend(2)
    assert bent > 1e-3
    assert sum(isinstance(m, torch.nn.Linear) for m in mlp.project.modules()) == 3
    with pytest.raises(ValueError, match="discriminator_condition_layers"):
        GanModelConfig(discriminator_condition_layers=-1)


def test_discriminator_condition_input_lets_the_convolutions_see_the_conditions():
    """With the projection term silenced, D's logit ignores the conditions, unless they are
    also input maps beside the image (model.discriminator_condition_input)."""
    from galaxy_hpc.models.gan.networks import Discriminator

    images = torch.randn(4, 3, 16, 16)
    low, high = torch.full((4, 2), -1.0), torch.full((4, 2), 1.0)

    def spread(condition_input):
        torch.manual_seed(0)
        d = Discriminator(image_shape=(3, 16, 16), num_conditions=2, channels=[8, 16],
                          spectral_norm=False, condition_input=condition_input).eval()
        with torch.no_grad():
            d.project.weight.zero_()
            return (d(images, high)[0] - d(images, low)[0]).abs().max().item()

    assert spread(False) == 0.0
    assert spread(True) > 1e-3


STRETCH = {"kind": "asinh", "softening": [0.04, 0.08], "lower": [-0.04, -0.07],
           "upper": [2.5, 4.8]}


def test_the_flux_view_shows_d_each_band_in_linear_flux():
    """model.discriminator_flux_view: beside each stretched band, its flux mapped so that
    the stretch's [lower, upper] is [-1, 1]; a core 20% fainter differs there by 20% of
    its flux (~0.3), where the stretched band moves by less than 0.1."""
    from galaxy_hpc.data.stretch import stretch_from_dict
    from galaxy_hpc.models.gan.networks import FluxView

    stretch = stretch_from_dict(STRETCH)
    flux = torch.rand(3, 2, 6, 6) * 3.0
    seen = FluxView(STRETCH)(stretch.forward(flux.clone()))
    lower, upper = (torch.tensor(STRETCH[k]).view(1, 2, 1, 1) for k in ("lower", "upper"))
    assert seen.shape == (3, 4, 6, 6)
    torch.testing.assert_close(seen[:, :2], stretch.forward(flux.clone()))
    torch.testing.assert_close(seen[:, 2:], 2 * (flux - lower) / (upper - lower) - 1,
                               atol=1e-4, rtol=1e-4)
    core = 0.8 * upper  # a bright core in each band
    view = FluxView(STRETCH)
    moved = view(stretch.forward(0.8 * core)) - view(stretch.forward(core.clone()))
    assert moved[0, :2].abs().max() < 0.1 and (moved[0, 2:].abs() > 3 * moved[0, :2].abs()).all()
    with pytest.raises(ValueError, match="float"):
        FluxView({"kind": "uint8"})


def test_sky_noise_adds_the_surveys_white_noise_in_flux_and_passes_gradients_through():
    """model.fake_sky_noise: what D sees of a fake is it with white noise of the survey's
    sigma per band in linear flux (on sky and on a bright core alike, though the stretch
    squeezes it there); G's gradient passes through as if the noise were a constant."""
    from galaxy_hpc.data.stretch import stretch_from_dict
    from galaxy_hpc.models.gan.networks import SkyNoise

    stretch = stretch_from_dict(STRETCH)
    sigma = [0.02, 0.05]
    layer = SkyNoise(STRETCH, sigma)
    for level in (0.0, 2.0):
        flux = torch.full((400, 2, 8, 8), level)
        stretched = stretch.forward(flux.clone()).requires_grad_(True)
        seen = layer(stretched)
        added = stretch.inverse(seen.detach()) - flux
        np.testing.assert_allclose(added.std(dim=(0, 2, 3)).numpy(), sigma, rtol=0.03)
        assert abs(added.mean().item()) < 0.002
        seen.sum().backward()
        assert torch.equal(stretched.grad, torch.ones_like(stretched))
    quiet = SkyNoise(STRETCH, [0.0, 0.0])(stretch.forward(torch.full((1, 2, 4, 4), 0.5)))
    torch.testing.assert_close(quiet, stretch.forward(torch.full((1, 2, 4, 4), 0.5)))


def test_the_photometry_view_reads_a_galaxys_flux_and_extent():
    """model.discriminator_photometry: D's extra term sees asinh'd aperture fluxes of each
    image about its centre. On round Gaussians of known flux and width: a brighter galaxy
    of one width raises every number; a wider one of one flux lowers the small apertures
    against the widest (the size it is there to show); a flat sky level is taken out by
    the border ring; and the term is a function of the conditions and those numbers alone,
    so G's gradient reaches the pixels through them."""
    from galaxy_hpc.data.stretch import stretch_from_dict
    from galaxy_hpc.models.gan.networks import Discriminator, PhotometryView

    stretch = stretch_from_dict(STRETCH)
    flux = np.array([20.0, 40.0, 20.0])
    sigma = np.array([1.5, 1.5, 3.0])
    light = galaxies(flux, sigma, side=32)[:, :2] - 0.5
    view = PhotometryView(STRETCH, (2, 32, 32))
    read = view(stretch.forward(torch.from_numpy(light)))
    assert read.shape == (3, len(PhotometryView.SCALES))
    assert (read[1] > read[0] + 0.25).all()  # twice the flux: ~ln 2 more where bright
    small_to_wide = read[:, 0] - read[:, -1]
    assert small_to_wide[2] < small_to_wide[0] - 0.5  # twice the width
    on_sky = view(stretch.forward(torch.from_numpy(light + 0.3)))
    torch.testing.assert_close(on_sky, read, atol=2e-3, rtol=2e-3)

    torch.manual_seed(0)
    d = Discriminator(image_shape=(2, 32, 32), num_conditions=2, channels=[8, 16],
                      spectral_norm=True, photometry=STRETCH).eval()
    plain = Discriminator(image_shape=(2, 32, 32), num_conditions=2, channels=[8, 16],
                          spectral_norm=True)
    plain.load_state_dict({k: v for k, v in d.state_dict().items()
                           if not k.startswith("judge_photometry")})
    images = stretch.forward(torch.from_numpy(light)).requires_grad_(True)
    c = torch.tensor([[0.5, -1.0], [0.0, 0.2], [-1.0, 1.0]])
    logit = d(images, c)[0]
    extra = d.judge_photometry(torch.cat([c, view(images)], dim=1)).squeeze(1)
    torch.testing.assert_close(logit, plain.eval()(images, c)[0] + extra)
    (grad,) = torch.autograd.grad(extra.sum(), images)
    assert grad[:, :, 16, 16].abs().sum() > 0
    with pytest.raises(ValueError, match="float"):
        PhotometryView({"kind": "uint8"}, (2, 32, 32))


def test_generator_aux_weight_weighs_g_aux_alone():
    from galaxy_hpc.models.gan.family import GanTrainModule
    from galaxy_hpc.models.gan.networks import ConditionScaler, Discriminator, Generator

    def module(g_aux_weight):
        torch.manual_seed(0)
        G = Generator(image_shape=(1, 12, 12), num_conditions=2, latent_dim=8, condition_dim=8,
                      mapping_layers=1, style_dim=16, channels=[8, 8], norm_groups=4)
        D = Discriminator(image_shape=(1, 12, 12), num_conditions=2, channels=[8, 8],
                          spectral_norm=False)
        return GanTrainModule(G, D, ConditionScaler([0.1, 10.5], [0.05, 0.5]), r1_gamma=1.0,
                              r1_every=1, aux_weight=1.0, monitor=None, monitor_every=1,
                              g_aux_weight=g_aux_weight).train()

    rng = np.random.default_rng(0)
    batch = {"pixel_values": torch.from_numpy(rng.normal(size=(4, 1, 12, 12)).astype(np.float32)),
             "conditions": torch.tensor([[0.1, 10.0], [0.15, 11.0], [0.05, 10.2], [0.2, 9.8]])}
    runs = {}
    for weight in (None, 0.0):
        m = module(weight)
        torch.manual_seed(1)
        loss, terms = m(batch)
        loss.backward()
        runs[weight] = (m, loss, terms)
    (full, loss_full, terms), (none, loss_none, _) = runs[None], runs[0.0]
    assert full.g_aux_weight == 1.0 and none.g_aux_weight == 0.0
    assert (loss_full - loss_none).item() == pytest.approx(terms["g_aux"].item(), rel=1e-5)
    for a, b in zip(full.discriminator.parameters(), none.discriminator.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-5, atol=1e-8)  # D: no change at all
    assert any(not torch.allclose(a.grad, b.grad)
               for a, b in zip(full.generator.parameters(), none.generator.parameters()))


def tiny_module(**kw):
    from galaxy_hpc.models.gan.family import GanTrainModule
    from galaxy_hpc.models.gan.networks import ConditionScaler, Discriminator, Generator

    torch.manual_seed(0)
    G = Generator(image_shape=(1, 12, 12), num_conditions=2, latent_dim=8, condition_dim=8,
                  mapping_layers=1, style_dim=16, channels=[8, 8], norm_groups=4)
    D = Discriminator(image_shape=(1, 12, 12), num_conditions=2, channels=[8, 8],
                      spectral_norm=False, minibatch_std_group=kw.pop("group", 0))
    return GanTrainModule(G, D, ConditionScaler([0.1, 10.5], [0.05, 0.5]), r1_gamma=1.0,
                          r1_every=1, aux_weight=1.0, monitor=None, monitor_every=1,
                          **kw).train()


def test_diversity_pairs_share_condition_and_pixel_noise_and_reward_distance():
    module = tiny_module(diversity_weight=0.5)
    G = module.generator
    seen = []
    original = G.forward

    def spy(noise, conditions, pixel_noise=None):
        seen.append((noise, conditions, pixel_noise))
        return original(noise, conditions, pixel_noise)

    G.forward = spy
    rng = np.random.default_rng(0)
    batch = {"pixel_values": torch.from_numpy(rng.normal(size=(5, 1, 12, 12)).astype(np.float32)),
             "conditions": torch.tensor([[0.1, 10.0], [0.15, 11.0], [0.05, 10.2], [0.2, 9.8],
                                         [0.12, 10.6]])}
    torch.manual_seed(1)
    loss, terms = module(batch)
    noise, conditions, maps = seen[0]
    c = module._scaler.normalise(batch["conditions"])
    # 5 images: pairs (0, 2) and (1, 3) share conditions 0 and 1; image 4 keeps its own.
    assert torch.equal(conditions, torch.stack([c[0], c[1], c[0], c[1], c[4]]))
    assert torch.equal(maps[:2], maps[2:4]) and not torch.equal(maps[0], maps[4])
    assert not torch.equal(noise[:2], noise[2:4])
    with torch.no_grad():
        fake = original(noise, conditions, maps)
    apart = (fake[:2] - fake[2:4]).abs().mean(dim=(1, 2, 3))
    moved = (noise[:2] - noise[2:4]).abs().mean(dim=1)
    assert terms["g_diversity"].item() == pytest.approx(
        float(torch.log((apart / moved).mean())), rel=1e-5)
    # The term moves G's parameters only (D is not in its graph: fakes come from G).
    loss.backward()
    plain = tiny_module()
    torch.manual_seed(1)
    plain_loss, plain_terms = plain(batch)
    assert "g_diversity" not in plain_terms


def test_minibatch_std_groups_do_not_mix_real_and_fake():
    from galaxy_hpc.models.gan.networks import minibatch_std

    x = torch.zeros(8, 2, 3, 3)
    x[4:] = torch.randn(4, 2, 3, 3)  # "fakes" vary, "reals" (first half) are all alike
    spread = minibatch_std(x, 4)[:, 0, 0, 0]
    assert torch.all(spread[:4] < 1e-3) and torch.all(spread[4:] > 0.1)
    assert minibatch_std(torch.randn(6, 2, 3, 3), 4).shape == (6, 1, 3, 3)  # groups of 3
    module = tiny_module(group=4)
    rng = np.random.default_rng(0)
    batch = {"pixel_values": torch.from_numpy(rng.normal(size=(4, 1, 12, 12)).astype(np.float32)),
             "conditions": torch.tensor([[0.1, 10.0], [0.15, 11.0], [0.05, 10.2], [0.2, 9.8]])}
    loss, terms = module(batch)
    assert torch.isfinite(loss) and "r1" in terms
    with pytest.raises(ValueError, match="minibatch_std_group"):
        GanModelConfig(minibatch_std_group=-1)


def test_several_draws_average_w1_over_draws_against_one_draws_floor():
    from scipy.stats import wasserstein_distance

    from galaxy_hpc.data.fidelity import compare_cell, split_half_distances

    rng = np.random.default_rng(3)
    real, draws = rng.normal(size=150), rng.normal(size=(4, 150)) + 0.3
    draws[2, :7] = np.nan  # a non-finite value leaves its draw only
    settings = dict(min_per_cell=30, num_splits=20, tolerance_sigmas=3.0)
    found = compare_cell(draws, real, rng=np.random.default_rng(0), **settings)
    kept = [d[np.isfinite(d)] for d in draws]
    assert found["w1"] == pytest.approx(np.mean([wasserstein_distance(d, real) for d in kept]))
    floor = split_half_distances(real, np.mean([d.size for d in kept]), num_splits=20,
                                 rng=np.random.default_rng(0))
    assert found["floor"] == pytest.approx(floor.mean())
    assert found["num_draws"] == 4 and found["num_generated"] == 4 * 150 - 7
    assert found["median_generated"] == pytest.approx(np.median(np.concatenate(kept)))
    one = compare_cell(draws[0], real, rng=np.random.default_rng(0), **settings)
    assert one["num_draws"] == 1 and one["w1"] == pytest.approx(
        wasserstein_distance(draws[0], real))


def test_draws_keep_a_perfect_generators_w1_over_floor_near_1_with_less_spread():
    """Same-distribution cells: the mean over 4 draws reads ~1 like one draw (no looser
    target), and its spread over cells is clearly smaller (the generator's share of the
    noise averaged out), so a perfect generator fails fewer cells by chance."""
    from galaxy_hpc.data.fidelity import compare_cell

    rng = np.random.default_rng(4)
    settings = dict(min_per_cell=30, num_splits=20, tolerance_sigmas=3.0)
    ratios = {1: [], 4: []}
    for _ in range(150):
        real, draws = rng.normal(size=120), rng.normal(size=(4, 120))
        for k in ratios:
            ratios[k].append(compare_cell(draws[:k], real, rng=rng, **settings)["w1_over_floor"])
    one, four = np.array(ratios[1]), np.array(ratios[4])
    assert one.mean() == pytest.approx(1.0, abs=0.1) and four.mean() == pytest.approx(1.0, abs=0.1)
    assert four.std() < 0.8 * one.std(), (one.std(), four.std())
    # A shifted generator is not let off: its mean over draws stays far above the floor.
    real = rng.normal(size=120)
    off = compare_cell(rng.normal(size=(4, 120)) + 0.6, real, rng=rng, **settings)
    assert off["w1_over_floor"] > 3


def test_judge_measures_every_draw_and_takes_trends_from_the_first(sample):
    conditions, trend, scatter, sigma = sample
    real = galaxies(trend * scatter, sigma)
    bright = galaxies(2 * trend * scatter, sigma)
    single = judge(bright, real, conditions, match_noise=False)
    both = judge(np.stack([real.copy(), bright]), real, conditions, match_noise=False)
    assert both["draws_per_row"] == 2 and single["draws_per_row"] == 1
    # Trends from draw 0 (the real images themselves): no difference.
    assert all(t["difference"] == [0.0, 0.0] for t in both["trends"])
    # Cells: W1 the mean of draw 0's (0) and the bright draw's, on the same floors.
    for cell, alone in zip(both["fidelity"]["cells"], single["fidelity"]["cells"]):
        q, q1 = cell["quantities"]["log_flux"], alone["quantities"]["log_flux"]
        assert q["num_draws"] == 2 and q["w1"] == pytest.approx(0.5 * q1["w1"])
    with pytest.raises(ValueError, match="draws_per_row"):
        FidelitySection(draws_per_row=0)


@pytest.mark.parametrize("target", [None, 0.3])
def test_validation_draws_each_row_from_its_own_seed_whatever_the_batches(target):
    """The whole-set validation's galaxies of a held-out row depend on the row alone (and
    the run's seed), not on the batch it fell into or the RNG state the loop set for that
    batch: the score of a set does not move with the number of ranks. So does the survey
    noise each is given before it is measured (model.fidelity.match_noise: a target)."""
    from types import SimpleNamespace

    from galaxy_hpc.models.gan.family import GanFamily

    module = tiny_module().eval()
    family = GanFamily.__new__(GanFamily)
    family.cfg = SimpleNamespace(run=SimpleNamespace(seed=5), model=SimpleNamespace(
        fidelity=FidelitySection(draws_per_row=2, colour_bands=[0, 0])))
    family.scaler = module._scaler
    family.data = SimpleNamespace(stretch=SimpleNamespace(inverse=np.exp))  # positive fluxes
    family.noise_target = None if target is None else np.array([target])
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.normal(size=(3, 1, 12, 12)).astype(np.float32))
    conditions = torch.tensor([[0.05, 10.0], [0.1, 10.5], [0.15, 11.0]])

    def measure(rows, batch_seed):
        torch.manual_seed(batch_seed)  # as the loop seeds each batch
        with torch.no_grad():
            return family.validation_measure(module, {
                "pixel_values": images[rows], "conditions": conditions[rows],
                "index": torch.tensor([7, 19, 40])[rows]})

    whole = measure([0, 1, 2], batch_seed=1)
    first, rest = measure([0], batch_seed=2), measure([1, 2], batch_seed=3)
    for q in ("log_flux", "half_light_radius"):
        found = whole[f"generated_{q}"]
        # (a 12 px galaxy with noise added may have no measurable radius: NaN in any batching)
        assert found.shape == (3, 2) and np.isfinite(found).sum() >= (6 if target is None else 4)
        np.testing.assert_allclose(found, np.concatenate([first[f"generated_{q}"],
                                                          rest[f"generated_{q}"]]),
                                   rtol=1e-4, atol=1e-5)  # float sums batched differently
        assert not np.array_equal(found[:, 0], found[:, 1])  # the draws differ
    if target is not None:  # the noise was added: without it the same draws read otherwise
        family.noise_target = None
        drawn = measure([0, 1, 2], batch_seed=1)["generated_half_light_radius"]
        assert np.nanmax(np.abs(drawn - whole["generated_half_light_radius"])) > 1e-3
        family.noise_target = np.array([target])
    reseeded = family.cfg.run.seed
    family.cfg.run.seed = reseeded + 1  # another run's seed draws other galaxies
    other = measure([0, 1, 2], 1)["generated_log_flux"]
    assert np.nanmax(np.abs(other - whole["generated_log_flux"])) > 1e-3


def test_noise_free_galaxies_are_given_the_real_noise_before_they_are_measured(sample):
    """The real images carry pixel noise, the generated ones (the same galaxies) none: the
    judge adds what they lack (model.fidelity.match_noise, galaxy_hpc.data.pixel_noise),
    reports both levels, and the same galaxies then meet both targets."""
    from galaxy_hpc.models.gan.fidelity import summary_lines

    conditions, trend, scatter, sigma = sample
    clean = galaxies(trend * scatter, sigma)
    rng = np.random.default_rng(5)
    real = (clean + rng.normal(size=clean.shape) * np.array([0.02, 0.03, 0.04])[:, None, None]
            ).astype(np.float32)
    found = judge(np.stack([clean, clean]), real, conditions)
    noise = found["pixel_noise"]
    assert noise["matched"] and noise["real"] == pytest.approx([0.02, 0.03, 0.04], rel=0.05)
    assert max(noise["generated"]) < 0.002
    assert noise["added"] == pytest.approx(noise["real"], rel=0.02)
    assert found["met"], summary_lines(found)
    assert any("added to generated images before measuring" in line
               for line in summary_lines(found))
    drawn = judge(clean, real, conditions, match_noise=False)
    assert drawn["pixel_noise"]["added"] is None
    assert drawn["pixel_noise"]["real"] == noise["real"]
