"""The conditional GAN: one module, two networks, one loop.

In process: one backward gives the generator exactly the gradient of its own loss and
the discriminator exactly that of its own; on hand-made galaxies whose brightness and
size follow a condition, both networks learn (D reads the conditions off real images,
D separates real from fake, G's galaxies come to brighten with the requested mass, and
every parameter of both moves); the consistency metric gives the known answer on
hand-made images of known flux; the networks run at 50 px (not a power of 2) without
transposed convolutions. Through the real loop on 2 MPI ranks under ZeRO-2: a run
interrupted and resumed reaches bit-identical generator weights and logs; the exported
generator loads in a fresh process without any training code and is deterministic per
seed, whatever the batching.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support.cli_runs import last_json, log_rows, quiet_env
from support.cli_runs import train as run_train
from support.stores import write_synth_store
from torch.nn import functional as F

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "train" / "gan_tiny.yaml")
ENV = quiet_env()
NAMES = ["redshift", "log_stellar_mass"]
# gan_tiny.yaml made smaller still for a 32 px store: levels at 8, 16, 32 px.
SMALL = ["model.generator_channels=[32,16,8]", "model.discriminator_channels=[8,16,32]",
         "model.latent_dim=16", "model.condition_dim=16", "model.style_dim=32",
         "model.consistency.num_samples=32", "model.consistency.report_num_samples=48",
         "model.consistency.every=2", "model.r1_every=2", "model.d_lr_ratio=2.0",
         "run.micro_batch_size=8", "run.num_samples=4", "run.log_every=1",
         "run.checkpoint_every=3"]


def train(launcher, galaxy_hpc, store, out, *overrides):
    done = run_train(galaxy_hpc, TINY, store, out, *SMALL, *overrides, launcher=launcher,
                     env=ENV)
    return last_json(done), done.stderr


# ---------------------------------------------------------------- hand-made galaxies

SIDE = 20


def blobs(conditions: np.ndarray, rng=None, side: int = SIDE, bands: int = 1) -> np.ndarray:
    """Round Gaussian galaxies whose flux rises with mass and falls with redshift and whose
    size rises with mass, on a sky of -1 (the stretched space), (N, bands, side, side)."""
    z, mass = conditions[:, 0], conditions[:, 1]
    flux = 10 ** (0.8 * (mass - 10.5)) * (0.1 / z)
    sigma = 1.2 + 1.0 * (mass - 9.5) * side / 20
    yy, xx = np.mgrid[0:side, 0:side] - (side - 1) / 2
    r2 = (yy**2 + xx**2)[None]
    light = flux[:, None, None] * np.exp(-r2 / (2 * sigma[:, None, None] ** 2)) \
        / (2 * np.pi * sigma[:, None, None] ** 2)
    images = np.repeat(light[:, None], bands, axis=1)
    if rng is not None:
        images = images + rng.normal(0.0, 0.002, images.shape)
    return (8 * images - 1).astype(np.float32)


def draw_conditions(count: int, rng) -> np.ndarray:
    return np.stack([rng.uniform(0.05, 0.2, count), rng.uniform(9.5, 11.5, count)], axis=1)


def toy_module(r1_every: int = 4, modulation: str = "film", categories: int = 0, **kw):
    from galaxy_hpc.models.gan.family import GanTrainModule
    from galaxy_hpc.models.gan.networks import ConditionScaler, Discriminator, Generator

    torch.manual_seed(0)
    generator = Generator(image_shape=(1, SIDE, SIDE), num_conditions=2, latent_dim=16,
                          condition_dim=16, mapping_layers=2, style_dim=32, channels=[32, 16, 8],
                          norm_groups=4, modulation=modulation, categories=categories)
    discriminator = Discriminator(image_shape=(1, SIDE, SIDE), num_conditions=2,
                                  channels=[8, 16, 32], spectral_norm=False,
                                  categories=categories if kw.get("information_weight") else 0)
    scaler = ConditionScaler([0.125, 10.5], [0.043, 0.58])
    return GanTrainModule(generator, discriminator, scaler, r1_gamma=1.0, r1_every=r1_every,
                          aux_weight=1.0, monitor=None, monitor_every=1, **kw)


def test_one_backward_gives_each_network_the_gradient_of_its_own_loss():
    module = toy_module(r1_every=1).train()
    rng = np.random.default_rng(0)
    conditions = draw_conditions(6, rng)
    batch = {"pixel_values": torch.from_numpy(blobs(conditions, rng)),
             "conditions": torch.tensor(conditions, dtype=torch.float32)}
    G, D = module.generator, module.discriminator
    torch.manual_seed(5)
    loss, terms = module(batch)
    loss.backward()
    assert all(p.requires_grad for p in D.parameters())  # `frozen` restored the flags

    # The same two losses taken apart, each differentiated for its own network only.
    c = module._scaler.normalise(batch["conditions"])
    torch.manual_seed(5)
    fake = G(torch.randn(6, G.latent_dim), c)
    logit_g, read_g = D(fake, c)
    loss_g = F.softplus(-logit_g).mean() + (read_g - c).pow(2).mean()
    real = batch["pixel_values"].clone().requires_grad_(True)
    logit_real, read_real = D(real, c)
    logit_fake, _ = D(fake.detach(), c)
    (grad_x,) = torch.autograd.grad(logit_real.sum(), real, create_graph=True)
    loss_d = (F.softplus(-logit_real).mean() + F.softplus(logit_fake).mean()
              + (read_real - c).pow(2).mean() + 0.5 * grad_x.pow(2).sum(dim=(1, 2, 3)).mean())
    assert loss.item() == pytest.approx((loss_g + loss_d).item(), rel=1e-5)
    assert terms["g_loss"].item() == pytest.approx(F.softplus(-logit_g).mean().item(), rel=1e-5)
    want_g = torch.autograd.grad(loss_g, list(G.parameters()), retain_graph=True)
    want_d = torch.autograd.grad(loss_d, list(D.parameters()), retain_graph=True)
    for got, want in [*zip(G.parameters(), want_g), *zip(D.parameters(), want_d)]:
        assert torch.allclose(got.grad, want, rtol=1e-4, atol=1e-7)
    # What the arrangement prevents: G's loss would otherwise push D's parameters too.
    leak = torch.autograd.grad(loss_g, list(D.parameters()), allow_unused=True)
    assert any(g is not None and float(g.abs().max()) > 1e-6 for g in leak)


def test_frozen_restores_flags_after_an_error():
    from galaxy_hpc.models.gan.family import frozen

    layer = torch.nn.Linear(2, 2)
    layer.bias.requires_grad_(False)
    with pytest.raises(RuntimeError), frozen(layer):
        assert not layer.weight.requires_grad
        raise RuntimeError("inside")
    assert layer.weight.requires_grad and not layer.bias.requires_grad


# Demodulated convolutions start as plain ones (every style scale 1) and take about twice
# the toy's steps to follow the condition as strongly.
@pytest.mark.parametrize("modulation, steps", [("film", 120), ("demod", 240)])
def test_both_networks_learn_and_generated_galaxies_follow_the_condition(modulation, steps):
    from galaxy_hpc.models.gan.consistency import measure_consistency

    module = toy_module(modulation=modulation).train()
    G, D = module.generator, module.discriminator
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    optimizer = torch.optim.AdamW([{"params": G.parameters()}, {"params": D.parameters()}],
                                  lr=1e-3, betas=(0.5, 0.99), weight_decay=0.0)
    check = draw_conditions(96, np.random.default_rng(1))
    stream = torch.Generator().manual_seed(0)
    noise = torch.randn(96, G.latent_dim, generator=stream)
    maps = torch.randn(96, *G.pixel_noise_shape, generator=stream)

    def mass_flux_rho() -> float:
        with torch.no_grad():
            made = G(noise, module._scaler.normalise(torch.tensor(check, dtype=torch.float32)),
                     maps)
        return measure_consistency(made.numpy() + 1, check, NAMES, requested=NAMES[1],
                                   by=NAMES[0])["flux"].rho

    start_rho = mass_flux_rho()
    rng = np.random.default_rng(0)
    torch.manual_seed(1)
    history = []
    for _ in range(steps):
        conditions = draw_conditions(16, rng)
        loss, terms = module({"pixel_values": torch.from_numpy(blobs(conditions, rng)),
                              "conditions": torch.tensor(conditions, dtype=torch.float32)})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({k: float(v) for k, v in terms.items()})

    def median(key, part):
        return float(np.median([h[key] for h in part]))

    first, last = history[:20], history[-40:]
    # D learns its regression of the conditions from real images, and tells real from fake:
    # its logistic loss falls below the 2 ln 2 of a coin toss, real logits sit above fake.
    assert median("d_aux", last) < 0.85 * median("d_aux", first)
    assert median("d_loss", last) < 2 * np.log(2)
    assert np.mean([h["d_real"] - h["d_fake"] for h in last]) > 0.1
    # G learns: D reads back the conditions G was asked for better than at first, and its
    # galaxies now brighten with the requested mass, from no correlation at the start.
    assert median("g_aux", last) < 0.85 * median("g_aux", first)
    assert abs(start_rho) < 0.3 and mass_flux_rho() > 0.6
    unchanged = [name for name, p in module.named_parameters()
                 if torch.equal(p.detach(), before[name])]
    assert unchanged == []


# ---------------------------------------------------------------- the metric, by hand


def gaussian_galaxies(flux: np.ndarray, sigma: np.ndarray, side: int = 32) -> np.ndarray:
    """Noiseless round Gaussians of known total flux on a sky of 0.5, 3 bands (N, 3, s, s)."""
    yy, xx = np.mgrid[0:side, 0:side] - (side - 1) / 2
    r2 = (yy**2 + xx**2)[None]
    light = flux[:, None, None] * np.exp(-r2 / (2 * sigma[:, None, None] ** 2)) \
        / (2 * np.pi * sigma[:, None, None] ** 2)
    return 0.5 + np.repeat(light[:, None] / 3, 3, axis=1)


def test_consistency_metric_on_hand_made_images_of_known_flux():
    from scipy.stats import spearmanr

    from galaxy_hpc.data.photometry import measure
    from galaxy_hpc.models.gan.consistency import as_terms, measure_consistency

    rng = np.random.default_rng(3)
    count = 60
    z = np.repeat([0.05, 0.1, 0.2], count // 3)
    mass = rng.uniform(9.5, 11.5, count)
    flux = 100 * 10 ** (0.4 * (mass - 10)) * (0.05 / z) ** 2  # brighter with mass, dimmer far
    sigma = 1.0 + 0.8 * (mass - 9.5)
    images = gaussian_galaxies(flux, sigma)
    assert np.allclose(measure(images).total_flux, flux, rtol=0.02)  # flux is measured right
    conditions = np.stack([z, mass], axis=1)
    found = measure_consistency(images, conditions, NAMES, requested="log_stellar_mass",
                                by="redshift")
    assert found["flux"].bin_rho == pytest.approx((1.0, 1.0, 1.0))
    assert found["size"].bin_rho == pytest.approx((1.0, 1.0, 1.0))
    assert found["flux"].bin_counts == (20, 20, 20)
    # Overall, redshift's dimming scrambles the ranks: the figure the bins exist to avoid.
    assert found["flux"].rho == pytest.approx(spearmanr(mass, flux).statistic, abs=1e-9)
    assert found["flux"].rho < 0.7
    # galaxyCGAN's failure, made by hand: more mass, less flux.
    fainter = gaussian_galaxies(100 * 10 ** (-0.4 * (mass - 10)) * (0.05 / z) ** 2, sigma)
    reversed_found = measure_consistency(fainter, conditions, NAMES,
                                         requested="log_stellar_mass", by="redshift")
    assert reversed_found["flux"].bin_rho == pytest.approx((-1.0, -1.0, -1.0))
    terms = as_terms(found)
    assert sorted(terms) == sorted(
        [f"consistency_{q}{b}" for q in ("flux", "size") for b in ("", "_bin0", "_bin1", "_bin2")])


def test_consistency_report_on_a_store(tmp_path):
    from galaxy_hpc.models.gan.consistency import report, summary_line
    from hpc.store import (
        StoreSpec,
        create_store,
        finalize_store,
        open_store,
        open_store_for_writing,
    )

    rng = np.random.default_rng(4)
    conditions = np.stack([rng.uniform(0.05, 0.2, 64), rng.uniform(9.5, 11.5, 64)], axis=1)
    spec = StoreSpec(image_shape=(3, 32, 32), image_dtype="float32",
                     columns={"redshift": "float64", "log_stellar_mass": "float64"},
                     shard_size=32)
    path = tmp_path / "made.zarr"
    create_store(path, spec, num_items=64)
    writer = open_store_for_writing(path)

    def draw(c):
        return gaussian_galaxies(100 * 10 ** (0.8 * (c[:, 1] - 10)) * (0.05 / c[:, 0]) ** 0.5,
                                 1.0 + 0.8 * (c[:, 1] - 9.5)).astype(np.float32)

    for shard in range(2):
        part = conditions[32 * shard:32 * (shard + 1)]
        writer.write_shard(shard, draw(part), {"redshift": part[:, 0],
                                               "log_stellar_mass": part[:, 1]})
    finalize_store(path)
    store = open_store(path)
    seen = []

    def generate(c, seeds):  # a "generator" that follows its conditions exactly
        seen.append(list(seeds))
        return draw(np.asarray(c))

    found = report(generate, store, NAMES, requested="log_stellar_mass", by="redshift",
                   num_samples=48)
    assert found["num_samples"] == 48 and len(seen[0]) == 48 and seen[0] == sorted(seen[0])
    assert all(rho > 0.9 for rho in found["generated"]["flux"]["bin_rho"])
    assert found["generated"]["flux"] == found["reference_real_images"]["flux"]
    json.dumps(found, allow_nan=False)  # NaN-free: strict JSON readers take it
    assert "per redshift bin" in summary_line(found)


# ---------------------------------------------------------------- networks


def test_demodulated_conv_is_each_images_own_conv_and_linear_in_its_input():
    """modulation "demod": image b is convolved with the shared weights scaled by its own
    style and renormalised per output channel (written out here image by image), and the
    layer is linear in its input, so faint outskirts come out in proportion however bright
    the core (a per-image GroupNorm rescales them by statistics the core dominates)."""
    from galaxy_hpc.models.gan.networks import DemodulatedConv, GeneratorBlock

    torch.manual_seed(0)
    conv = DemodulatedConv(4, 6, style_dim=5)
    torch.nn.init.normal_(conv.affine.weight, std=0.3)
    torch.nn.init.normal_(conv.bias)
    x, w = torch.randn(3, 4, 9, 11), torch.randn(3, 5)
    got = conv(x, w)
    for b in range(3):
        weight = conv.weight * (1 + conv.affine(w[b]))[None, :, None, None]
        weight = weight / weight.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt()
        want = F.conv2d(F.pad(x[b:b + 1], (1, 1, 1, 1), mode="reflect"), weight, conv.bias)
        assert torch.allclose(got[b:b + 1], want, atol=1e-5)
    yy, xx = torch.meshgrid(torch.arange(9.0) - 4, torch.arange(11.0) - 5, indexing="ij")
    core = torch.exp(-(yy**2 + xx**2) / 2).expand(3, 4, 9, 11) * 50
    outskirts = torch.exp(-(yy**2 + xx**2).sqrt() / 4).expand(3, 4, 9, 11) * 0.1
    bias = conv.bias.view(1, -1, 1, 1)
    response = conv(core + 2 * outskirts, w) - conv(core + outskirts, w)
    assert torch.allclose(response, conv(outskirts, w) - bias, atol=1e-4)
    # The same question put to the GroupNorm block's first convolution: not linear.
    film = GeneratorBlock(4, 8, (9, 11), style_dim=5, groups=4, upsample=False)
    first = lambda v: film.norm1(film.conv1(v))  # noqa: E731
    assert not torch.allclose(first(core + 2 * outskirts) - first(core + outskirts),
                              first(outskirts) - first(torch.zeros_like(outskirts)), atol=1e-2)
    with pytest.raises(ValueError, match="modulation"):
        GeneratorBlock(4, 8, (9, 11), style_dim=5, groups=4, upsample=False, modulation="adain")


def test_export_keeps_the_modulation_and_older_exports_load_as_film(tmp_path):
    """generator.json names the modulation; a folder saved before the key existed (no
    "modulation") loads its GroupNorm/FiLM weights strictly, as it was trained."""
    from galaxy_hpc.models.gan.generator import GalaxyGenerator, load_generator
    from galaxy_hpc.models.gan.networks import generator_from_spec

    spec = {"image_shape": [3, 20, 20], "image_dtype": "float32", "num_conditions": 2,
            "condition_names": NAMES, "condition_mean": [0.1, 10.5],
            "condition_std": [0.05, 0.5], "latent_dim": 8, "condition_dim": 8,
            "mapping_layers": 1, "style_dim": 16, "channels": [16, 8, 8], "norm_groups": 4,
            "stretch": {"kind": "asinh", "softening": [0.1] * 3, "lower": [-0.1] * 3,
                        "upper": [5.0] * 3}}
    conditions, seeds = [[0.05, 10.0], [0.15, 11.0], [0.1, 10.4]], [3, 4, 5]
    for modulation in ("demod", None):
        saved = dict(spec) if modulation is None else {**spec, "modulation": modulation}
        torch.manual_seed(0)
        network = generator_from_spec(saved)
        for p in network.parameters():  # FiLM / style scales start at zero: make them not
            torch.nn.init.normal_(p, std=0.2)
        made = GalaxyGenerator(network, saved)
        folder = made.save(tmp_path / str(modulation))
        written = json.loads((folder / "generator.json").read_text())
        assert written.get("modulation") == modulation
        loaded = load_generator(folder)
        kinds = {type(m).__name__ for m in loaded.network.modules()}
        assert ("DemodulatedConv" in kinds) == (modulation == "demod")
        assert ("GroupNorm" in kinds) == (modulation is None)
        np.testing.assert_array_equal(loaded.generate(conditions, seeds),
                                      made.generate(conditions, seeds))


def test_latent_categories_switch_on_the_latents_first_entry_and_survive_the_export(tmp_path):
    """model.latent_categories: the latent's first entry picks one of N equally likely
    categories (its normal quantile), shown to the mapping as a one-hot. Latents that
    differ by a hair in that entry map to nearly one style within a category and jump
    across a boundary; the export names N and draws what the network did."""
    from galaxy_hpc.models.gan.config import GanModelConfig
    from galaxy_hpc.models.gan.generator import GalaxyGenerator, load_generator
    from galaxy_hpc.models.gan.networks import Generator, generator_from_spec

    def network(categories):
        torch.manual_seed(0)
        return Generator(image_shape=(3, 12, 12), num_conditions=2, latent_dim=8,
                         condition_dim=8, mapping_layers=1, style_dim=16, channels=[8, 8],
                         norm_groups=4, categories=categories)

    plain, switched = network(0), network(4)
    assert plain.mapping[0].in_features == 16 and switched.mapping[0].in_features == 20
    first = torch.tensor([-3.0, -0.7, -0.6, 0.0, 0.6, 0.7, 3.0])
    noise = torch.randn(1, 8).repeat(len(first), 1)
    noise[:, 0] = first
    assert switched.category(noise).tolist() == [0, 0, 1, 2, 2, 3, 3]  # quartiles at +-0.674
    counts = torch.bincount(switched.category(torch.randn(40000, 8)), minlength=4)
    assert (counts - 10000).abs().max() < 400
    with torch.no_grad():
        for p in switched.parameters():
            torch.nn.init.normal_(p, std=0.3)
        boundary = -0.6745  # the first quartile of a standard normal
        pairs = noise[:4].clone()
        pairs[:, 0] = torch.tensor([boundary - 1e-3, boundary + 1e-3, -1.0 - 1e-3, -1.0 + 1e-3])
        w = switched.style(pairs, torch.zeros(4, 2))
    jump, smooth = (w[1] - w[0]).abs().max(), (w[3] - w[2]).abs().max()
    assert switched.category(pairs).tolist() == [0, 1, 0, 0]
    assert jump > 100 * smooth and jump > 1e-2
    spec = {"image_shape": [3, 12, 12], "image_dtype": "float32", "num_conditions": 2,
            "condition_names": NAMES, "condition_mean": [0.1, 10.5],
            "condition_std": [0.05, 0.5], "latent_dim": 8, "condition_dim": 8,
            "mapping_layers": 1, "style_dim": 16, "channels": [8, 8], "norm_groups": 4,
            "latent_categories": 4,
            "stretch": {"kind": "asinh", "softening": [0.1] * 3, "lower": [-0.1] * 3,
                        "upper": [5.0] * 3}}
    made = GalaxyGenerator(switched, spec)
    folder = made.save(tmp_path / "categories")
    assert json.loads((folder / "generator.json").read_text())["latent_categories"] == 4
    loaded = load_generator(folder)
    assert loaded.network.categories == 4
    np.testing.assert_array_equal(loaded.generate([[0.05, 10.0], [0.15, 11.0]], [3, 4]),
                                  made.generate([[0.05, 10.0], [0.15, 11.0]], [3, 4]))
    assert generator_from_spec({k: v for k, v in spec.items()
                                if k != "latent_categories"}).categories == 0
    # A damaged generator.json: a value that builds nothing, or one that builds another
    # network than the weights' (2 categories, the weights 4): each names its file.
    config = folder / "generator.json"
    for bad, named in (("two", "generator.json"), (-1, "generator.json"),
                       (2, "generator.safetensors")):
        config.write_text(json.dumps({**json.loads(config.read_text()),
                                      "latent_categories": bad}))
        with pytest.raises(ValueError, match=named):
            load_generator(folder)
    with pytest.raises(ValueError, match="latent_categories"):
        GanModelConfig(latent_categories=-1)


def test_the_information_term_trains_d_to_read_the_category_and_g_to_show_it():
    """model.category_information_weight (InfoGAN): D's category head learns from the
    detached fakes only, G is rewarded through the frozen head. Trained with it (weighted
    up so that a 100-step toy shows it; the adversarial terms beside it), the category of
    a fresh fake can be read off the image, where at the start D reads it at chance."""
    from galaxy_hpc.models.gan.config import GanModelConfig

    module = toy_module(r1_every=1, categories=4, information_weight=0.5).train()
    G, D = module.generator, module.discriminator
    rng = np.random.default_rng(0)
    conditions = draw_conditions(8, rng)
    batch = {"pixel_values": torch.from_numpy(blobs(conditions, rng)),
             "conditions": torch.tensor(conditions, dtype=torch.float32)}
    torch.manual_seed(5)
    loss, terms = module(batch)
    loss.backward()
    # The term taken apart: each network gets the gradient of its own half only.
    c = module._scaler.normalise(batch["conditions"])
    torch.manual_seed(5)
    noise = torch.randn(8, G.latent_dim)
    fake = G(noise, c)
    drawn = G.category(noise)
    assert terms["g_info"].item() == pytest.approx(
        F.cross_entropy(D(fake, c, True)[2], drawn).item(), rel=1e-5)
    d_info = F.cross_entropy(D(fake.detach(), c, True)[2], drawn)
    assert terms["d_info"].item() == pytest.approx(d_info.item(), rel=1e-5)
    head = torch.autograd.grad(0.5 * d_info, list(D.classify.parameters()))
    for got, want in zip(D.classify.parameters(), head):
        assert torch.allclose(got.grad, want, rtol=1e-4, atol=1e-7)
    assert D(fake, c)[0].shape == (8,) and len(D(fake, c)) == 2  # callers without it
    with pytest.raises(ValueError, match="category head"):
        toy_module().discriminator(fake, c, True)

    def accuracy_after(module, steps):
        G, D = module.generator, module.discriminator
        opt = torch.optim.Adam(module.parameters(), lr=2e-3, betas=(0.0, 0.99))
        for step in range(steps):
            conditions = draw_conditions(16, rng)
            batch = {"pixel_values": torch.from_numpy(blobs(conditions, rng)),
                     "conditions": torch.tensor(conditions, dtype=torch.float32)}
            opt.zero_grad()
            module(batch)[0].backward()
            opt.step()
        with torch.no_grad():
            c = module._scaler.normalise(torch.tensor(draw_conditions(400, rng),
                                                      dtype=torch.float32))
            noise = torch.randn(400, G.latent_dim)
            read = D(G(noise, c), c, True)[2].argmax(dim=1)
        return float((read == G.category(noise)).float().mean())

    toy = toy_module(r1_every=4, categories=4, information_weight=20.0)
    assert accuracy_after(toy, 0) < 0.35  # four categories: chance is 0.25
    assert accuracy_after(toy, 100) > 0.6
    with pytest.raises(ValueError, match="latent_categories"):
        GanModelConfig(category_information_weight=1.0)
    with pytest.raises(ValueError, match="category_information_weight"):
        GanModelConfig(latent_categories=4, category_information_weight=-1.0)


def test_latent_mixture_learns_odds_that_move_with_the_conditions(tmp_path):
    """model.latent_mixture: two kinds, the second where the latent's first entry passes
    a threshold b(c) of the conditions, so the share of each kind moves with them. The
    switch is a sigmoid steep enough to be a step for all but the latents near b(c),
    and those carry a gradient to b: fitted to a wanted share of the second kind that
    rises with a condition, the threshold learns it. The export keeps the switch."""
    from galaxy_hpc.models.gan.config import GanModelConfig
    from galaxy_hpc.models.gan.generator import GalaxyGenerator, load_generator
    from galaxy_hpc.models.gan.networks import Generator

    torch.manual_seed(0)
    net = Generator(image_shape=(3, 12, 12), num_conditions=2, latent_dim=8, condition_dim=8,
                    mapping_layers=1, style_dim=16, channels=[8, 8], norm_groups=4,
                    mixture=True)
    assert net.mapping[0].in_features == 8 + 1 + 8 and net.num_kinds == 2
    with pytest.raises(ValueError, match="conditions"):
        net.category(torch.randn(4, 8))
    # The switch G's mapping sees is a step at b(c) (set to 0.3 here by hand).
    with torch.no_grad():
        net.threshold[-1].weight.zero_()
        net.threshold[-1].bias.fill_(0.3)
    noise = torch.randn(4, 8)
    noise[:, 0] = torch.tensor([0.0, 0.28, 0.32, 1.0])
    c = torch.zeros(4, 2)
    assert net.category(noise, c).tolist() == [0, 0, 1, 1]
    switch = net.switch(noise, c)
    assert switch[0] < 0.01 and switch[3] > 0.99  # a step, away from b
    assert 0.2 < switch[1] < 0.5 < switch[2] < 0.8  # a slope, at b
    (grad,) = torch.autograd.grad(switch.sum(), net.threshold[-1].bias)
    assert grad.abs() > 1.0
    # Fitted to a share of the second kind that rises with the first condition (0.2 at
    # c = -1, 0.8 at c = +1) through the soft switch alone, the threshold learns the odds.
    opt = torch.optim.Adam(net.threshold.parameters(), lr=0.02)
    wanted = lambda c0: 0.5 + 0.3 * c0  # noqa: E731
    for _ in range(300):
        conditions = torch.zeros(512, 2)
        conditions[:, 0] = torch.randint(0, 2, (512,)).float() * 2 - 1
        soft = net.switch(torch.randn(512, 8), conditions)
        opt.zero_grad()
        sum((soft[conditions[:, 0] == v].mean() - wanted(v)) ** 2 for v in (-1.0, 1.0)).backward()
        opt.step()
    z = torch.randn(20000, 8)
    for v in (-1.0, 1.0):
        share = net.category(z, torch.tensor([[v, 0.0]]).expand(len(z), 2)).float().mean()
        assert abs(float(share) - wanted(v)) < 0.03
    spec = {"image_shape": [3, 12, 12], "image_dtype": "float32", "num_conditions": 2,
            "condition_names": NAMES, "condition_mean": [0.1, 10.5],
            "condition_std": [0.05, 0.5], "latent_dim": 8, "condition_dim": 8,
            "mapping_layers": 1, "style_dim": 16, "channels": [8, 8], "norm_groups": 4,
            "latent_mixture": True,
            "stretch": {"kind": "asinh", "softening": [0.1] * 3, "lower": [-0.1] * 3,
                        "upper": [5.0] * 3}}
    made = GalaxyGenerator(net, spec)
    folder = made.save(tmp_path / "mixture")
    assert json.loads((folder / "generator.json").read_text())["latent_mixture"] is True
    loaded = load_generator(folder)
    assert loaded.network.mixture
    # A damaged generator.json names its file: a string where the flag was, or no
    # switch for weights trained with one.
    config = folder / "generator.json"
    for bad, named in (("false", "generator.json"), (False, "generator.safetensors")):
        config.write_text(json.dumps({**json.loads(config.read_text()),
                                      "latent_mixture": bad}))
        with pytest.raises(ValueError, match=named):
            load_generator(folder)
    np.testing.assert_array_equal(loaded.generate([[0.05, 10.0], [0.15, 11.0]], [3, 4]),
                                  made.generate([[0.05, 10.0], [0.15, 11.0]], [3, 4]))
    with pytest.raises(ValueError, match="one"):
        Generator(image_shape=(3, 12, 12), num_conditions=2, latent_dim=8, condition_dim=8,
                  mapping_layers=1, style_dim=16, channels=[8, 8], norm_groups=4,
                  mixture=True, categories=2)
    with pytest.raises(ValueError, match="latent_mixture"):
        GanModelConfig(latent_mixture=True, latent_categories=4)
    assert GanModelConfig(latent_mixture=True, category_information_weight=0.1)


@pytest.mark.parametrize("modulation", ["film", "demod"])
def test_networks_at_50_and_128_px_resize_without_transposed_convolutions(modulation):
    from galaxy_hpc.models.gan.networks import Discriminator, Generator, resolution_ladder

    assert resolution_ladder(50, 50, 4) == [(7, 7), (13, 13), (25, 25), (50, 50)]
    assert resolution_ladder(128, 128, 4) == [(16, 16), (32, 32), (64, 64), (128, 128)]
    with pytest.raises(ValueError, match="too small"):
        resolution_ladder(32, 32, 5)
    for shape in [(3, 50, 50), (4, 128, 128), (1, 40, 56)]:
        torch.manual_seed(0)
        G = Generator(image_shape=shape, num_conditions=2, latent_dim=8, condition_dim=8,
                      mapping_layers=1, style_dim=16, channels=[16, 8, 8, 8], norm_groups=4,
                      modulation=modulation)
        D = Discriminator(image_shape=shape, num_conditions=2, channels=[8, 8, 8, 16],
                          spectral_norm=True)
        images = G(torch.randn(2, 8), torch.zeros(2, 2))
        assert images.shape == (2, *shape)
        logit, read = D(images, torch.zeros(2, 2))
        assert logit.shape == (2,) and read.shape == (2, 2)
        assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in G.modules())


def test_configs_reject_bad_fields_and_sbatch_script():
    from galaxy_hpc.train.config import TrainGanConfig
    from hpc.config import ConfigError, load_config

    cfg = load_config(TINY)
    assert isinstance(cfg, TrainGanConfig) and cfg.data.condition_columns == NAMES
    assert isinstance(load_config(REPO / "configs" / "train" / "gan.yaml"), TrainGanConfig)
    assert isinstance(load_config(REPO / "configs" / "train" / "gan_cpu.yaml"), TrainGanConfig)
    for override, field in [("model.consistency.requested=bulge_fraction", "consistency.requested"),
                            ("model.discriminator_channels=[8,16]", "discriminator_channels"),
                            ("model.generator_channels=[30,16,8,8]", "norm_groups"),
                            ("zero.stage=3", "zero.stage"),
                            ("model.generator_modulation=adain", "generator_modulation"),
                            ("model.consistency.num_samples=4", "num_samples")]:
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
            load_config(TINY, [override])
    script = REPO / "slurm" / "train_gan.sbatch"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    assert os.access(script, os.X_OK) and "ghpc_srun train" in script.read_text()


def test_held_out_score_is_near_one_for_the_data_and_grows_with_the_gap():
    """The validation loss is the export's cell statistic on the held-out rows: another
    draw of the same galaxies (these toys differ by pixel noise only: closer than the
    real cell's own halves) reads below 1, a generator off in flux or size several
    times more, and a set too small for the grid is judged as one cell."""
    from galaxy_hpc.models.gan.config import FidelitySection
    from galaxy_hpc.models.gan.fidelity import held_out_score, measured_quantities

    rng = np.random.default_rng(0)
    conditions = draw_conditions(900, rng)
    section = FidelitySection(grid_bins=2, draws_per_row=2)

    def measure(conds: np.ndarray) -> dict[str, np.ndarray]:
        return measured_quantities((blobs(conds, rng) + 1) / 8)  # store units: sky at 0

    real = measure(conditions)
    judged = section.judged

    def score(shift: list[float], subset: slice = slice(None)):
        draws = [measure(conditions[subset] + shift) for _ in range(2)]
        return held_out_score({q: np.stack([d[q] for d in draws], axis=1) for q in judged},
                              {q: real[q][subset] for q in judged}, conditions[subset],
                              NAMES, section)

    same, terms = score([0.0, 0.0])
    assert same < 1.0 and terms["cells_judged"] == 8  # 2 x 2 cells, 2 quantities
    assert terms["w1_over_floor_worst"] >= same
    heavier, terms = score([0.0, 0.4])  # brighter and larger at every condition
    assert heavier > 3 and heavier > 5 * same and terms["w1_over_floor_log_flux"] > 3
    small, terms = score([0.0, 0.0], slice(0, 40))  # 10 a cell: below min_per_cell
    assert terms["cells_judged"] == 0 and small < 1.0


# ---------------------------------------------------------------- the loop, 2 ranks


@pytest.fixture(scope="module")
def flux32(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan-data") / "flux32.zarr"
    return write_synth_store(out, num_galaxies=96, seed=3, shard_size=32, captions=False, size=32,
                             output="float32")


@pytest.fixture(scope="module")
def runs(galaxy_hpc, mpiexec, flux32, tmp_path_factory):
    """Two ranks, ZeRO-2, EMA, a quarter of the galaxies held out and judged every 3 steps:
    6 steps straight through, and 3 + 3 with a resume."""
    root = tmp_path_factory.mktemp("gan-runs")
    launcher = (mpiexec, "-n", "2")
    held_out = ("data.validation_fraction=0.25", "run.eval_every=3")
    straight = train(launcher, galaxy_hpc, flux32, root / "straight", "run.max_steps=6",
                     *held_out)
    train(launcher, galaxy_hpc, flux32, root / "split", "run.max_steps=3", *held_out)
    resumed = train(launcher, galaxy_hpc, flux32, root / "split", "run.max_steps=6", *held_out)
    return {"root": root, "straight": straight, "resumed": resumed}


@pytest.mark.parametrize("field", ["model.discriminator_flux_view", "model.fake_sky_noise"])
def test_linear_flux_options_are_refused_on_a_uint8_store(galaxy_hpc, tmp_path, field):
    from support.cli_runs import run_command

    store = write_synth_store(tmp_path / "rgb.zarr", num_galaxies=16, seed=3, shard_size=16,
                              captions=False, size=32, output="uint8")
    done = run_command([galaxy_hpc, "train", TINY, f"data.store={store}",
                        f"run.output_dir={tmp_path / 'run'}", "run.max_steps=1", *SMALL,
                        f"{field}=true"], cwd=tmp_path, env=ENV, timeout=240)
    assert done.returncode != 0
    assert f"{field} needs a float (linear flux) store" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


@pytest.mark.mpi
def test_two_ranks_stop_naming_a_damaged_float_store(galaxy_hpc, mpiexec, flux32, tmp_path):
    """Rank 0 alone reads the sample a float store's stretch and survey noise come from
    (DataFacts.once): a damaged image in it must stop both ranks with its name, not leave
    rank 1 waiting for a broadcast that never comes."""
    from support.cli_runs import run_command

    sys.path.insert(0, str(REPO / "tests" / "faults"))
    from damage_kit import copy_store, damage

    store = copy_store(flux32, tmp_path / "hurt.zarr")
    hurt = damage(store, "flip", position=2)
    done = run_command([mpiexec, "-n", "2", galaxy_hpc, "train", TINY, f"data.store={store}",
                        f"run.output_dir={tmp_path / 'run'}", "run.max_steps=2", *SMALL],
                       cwd=tmp_path, env=ENV, timeout=240)
    assert done.returncode != 0
    assert f"{store} is damaged" in done.stderr and hurt in done.stderr, done.stderr[-3000:]
    assert "failed on this rank" in done.stderr  # rank 1 stopped with the same message


@pytest.mark.mpi
def test_two_ranks_zero2_train_log_and_export(runs):
    out = runs["root"] / "straight"
    result, stderr = runs["straight"]
    assert result["ok"] and result["step"] == 6 and result["artifact"] == str(out / "generator")
    marker = json.loads((out / "checkpoints" / "checkpoint-00000006" / "COMPLETE").read_text())
    assert marker["world_size"] == 2 and marker["zero_stage"] == 2
    rows = [r for r in log_rows(out) if "val_loss" not in r]
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert all({"d_loss", "g_loss", "d_aux", "g_aux", "d_real", "d_fake"} <= set(r) for r in rows)
    assert all("consistency_flux_bin0" in r for r in rows[1::2])  # steps 2, 4, 6
    assert all("r1" in r for r in rows[0::2]) and not any("r1" in r for r in rows[1::2])
    assert (out / "samples" / "step-00000006.png").is_file()
    lines = (out / "consistency_log.jsonl").read_text().splitlines()
    ema_log = [json.loads(line) for line in lines]
    assert [(r["step"], r["weights"]) for r in ema_log] == [(6, "ema")]  # with the final grid
    assert {"consistency_flux_bin0", "consistency_size"} <= set(ema_log[0])
    found = json.loads((out / "generator" / "consistency.json").read_text())
    assert found["num_samples"] == 48 and len(found["generated"]["flux"]["bin_rho"]) == 3
    assert "conditioning consistency (48 generated galaxies" in stderr
    # Validation judges the generator by the photometry of held-out rows, not by L_D + L_G.
    validations = [r for r in log_rows(out) if "val_loss" in r]
    assert [r["step"] for r in validations] == [3, 6]
    from galaxy_hpc.data.split import Split

    held_out = len(Split.of(96, fraction=0.25, seed=0).heldout)  # 21, too few for the grid:
    for row in validations:  # judged as one cell (fidelity.held_out_score)
        assert row["val_items"] == held_out and row["val_cells_judged"] == 0
        assert row["val_loss"] == pytest.approx(
            (row["val_w1_over_floor_log_flux"] + row["val_w1_over_floor_half_light_radius"]) / 2,
            rel=1e-5)
        assert row["val_w1_over_floor_worst"] >= row["val_loss"] > 0
        assert np.isfinite(row["val_d_aux"]) and "val_d_loss" not in row
    best = json.loads((out / "checkpoints" / "best.json").read_text())
    assert best["step"] == min(validations, key=lambda r: r["val_loss"])["step"]
    # Fidelity from 4 draws of each row (model.fidelity.draws_per_row), the trends from
    # the first: the rows of consistency.json, given the pixel noise they lack against the
    # real images before measuring (model.fidelity.match_noise, the default; as drawn the
    # trends are consistency.json's to the digit: tests/train/test_gan_fidelity.py).
    verdict = json.loads((out / "generator" / "fidelity.json").read_text())
    assert verdict["draws_per_row"] == 4 and verdict["num_samples"] == 48
    judged = [cell["quantities"]["log_flux"] for cell in verdict["fidelity"]["cells"]]
    assert {q["num_draws"] for q in judged} == {4}
    # Every draw of every row measured once (a non-finite log flux is left out).
    assert 48 < sum(q["num_generated"] for q in judged) <= 4 * 48
    flux = verdict["trends"][0]
    assert flux["real"]["bin_rho"] == found["reference_real_images"]["flux"]["bin_rho"]
    assert flux["generated"]["bin_counts"] == found["generated"]["flux"]["bin_counts"]
    noise = verdict["pixel_noise"]
    assert noise["matched"] and len(noise["real"]) == len(noise["added"]) == 3
    assert all(r > 0 and 0 <= a <= r for r, a in zip(noise["real"], noise["added"]))
    assert "pixel noise per band: real" in stderr


@pytest.mark.mpi
def test_both_networks_moved_through_the_loop_with_their_own_learning_rates(runs, flux32):
    from galaxy_hpc.models.gan.networks import Discriminator, generator_from_spec
    from galaxy_hpc.models.gan.generator import load_generator

    out = runs["root"] / "straight"
    spec = json.loads((out / "generator" / "generator.json").read_text())
    torch.manual_seed(0)  # run.seed: the loop's initial weights, G first, then D
    initial_g = generator_from_spec(spec).state_dict()
    initial_d = Discriminator(image_shape=spec["image_shape"], num_conditions=2,
                              channels=[8, 16, 32], spectral_norm=False).state_dict()
    saved = torch.load(out / "checkpoints" / "checkpoint-00000006" / "mp_rank_00_model_states.pt",
                       weights_only=False, map_location="cpu")
    module = saved["module"]
    for prefix, initial in (("generator.", initial_g), ("discriminator.", initial_d)):
        assert all(not torch.equal(module[prefix + k], v) for k, v in initial.items()), prefix
    assert saved["lr_scheduler"]["base_lrs"] == pytest.approx([1e-3, 2e-3])  # d_lr_ratio 2
    exported = load_generator(out / "generator").network.state_dict()  # EMA of G
    assert all(not torch.equal(exported[k], initial_g[k]) for k in exported)


@pytest.mark.mpi
def test_resume_on_two_ranks_is_exact(runs):
    from safetensors.torch import load_file

    root = runs["root"]
    assert runs["resumed"][0]["resumed_from"] == 3
    weights = "generator/generator.safetensors"
    a, b = load_file(root / "straight" / weights), load_file(root / "split" / weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def logged(out):
        return [{k: v for k, v in r.items() if k not in ("time", "images_per_s")}
                for r in log_rows(out)]

    assert logged(root / "straight") == logged(root / "split")
    for name in ("consistency.json", "fidelity.json"):  # every draw's seeds fixed per row
        assert (root / "straight" / "generator" / name).read_text() == \
            (root / "split" / "generator" / name).read_text()


FRESH_PROCESS = """
import json, sys
import numpy as np
from galaxy_hpc.models.gan.generator import load_generator
gen = load_generator(sys.argv[1], device="cpu")
conditions = np.array([[0.05, 10.0], [0.1, 10.5], [0.15, 11.0], [0.08, 9.8], [0.2, 11.3],
                       [0.12, 10.2]])
seeds = [11, 12, 13, 14, 15, 16]
whole = gen.generate(conditions, seeds, batch_size=4)
order = [5, 3, 1, 0, 2, 4]
shuffled = gen.generate(conditions[order], [seeds[i] for i in order], batch_size=4)
tail = gen.generate(conditions[2:], seeds[2:], batch_size=4)
alone = np.concatenate([gen.generate(conditions[i:i + 1], seeds[i:i + 1]) for i in range(6)])
other = gen.generate(conditions, [s + 100 for s in seeds])
errors = []
for bad in ([[0.1, 10.0, 3.0]], [[0.1, float("nan")]]):
    try:
        gen.generate(np.array(bad), [1])
    except ValueError as error:
        errors.append(str(error))
print(json.dumps({
    "names": gen.condition_names, "shape": list(whole.shape), "dtype": str(whole.dtype),
    "image_shape": list(gen.image_shape), "stretch": gen.stretch.to_dict()["kind"],
    "same_split": bool(np.array_equal(shuffled, whole[order]) and
                       np.array_equal(tail, whole[2:])),
    "alone_max_diff": float(np.abs(alone - whole).max()),
    "other_seeds_diff": float(np.abs(other - whole).mean()),
    "finite": bool(np.isfinite(whole).all()),
    "training_code": sorted(m for m in sys.modules if m.startswith(
        ("deepspeed", "galaxy_hpc.train", "galaxy_hpc.models.gan.family"))),
    "errors": errors}))
"""


@pytest.mark.mpi
def test_generator_loads_alone_and_is_deterministic_per_seed(runs, tmp_path):
    folder = tmp_path / "moved-generator"  # away from the run: no config, no store beside it
    shutil.copytree(runs["root"] / "straight" / "generator", folder)
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(folder)], check=False,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["names"] == NAMES and found["stretch"] == "asinh"
    assert found["shape"] == [6, 3, 32, 32] and found["dtype"] == "float32"
    assert found["image_shape"] == [3, 32, 32] and found["finite"]
    assert found["same_split"]  # a galaxy's bytes depend on its condition and seed only
    assert found["alone_max_diff"] < 1e-4  # other batch sizes: equal to float rounding
    assert found["other_seeds_diff"] > 1e-3
    assert found["training_code"] == []
    assert "(N, 2)" in found["errors"][0] and "log_stellar_mass" in found["errors"][1]
