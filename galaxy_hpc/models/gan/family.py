"""The conditional GAN as one family on the one training loop (`kind: train_gan`).

The problem. The loop steps one DeepSpeed engine, with one optimizer, on one loss, with
one backward per micro-step. A GAN has two networks with opposed losses: the
discriminator D minimises L_D, the generator G minimises L_G, and each must be moved by
the gradient of its own loss only.

The arrangement. One module holds G and D; its forward computes both losses and returns
their sum, built so that a single backward gives each network exactly its own gradient:

    fake = G(z, c)
    L_G  = softplus(-D*(fake, c)) + g_aux_weight |D*_aux(fake) - c|^2
    L_D  = softplus(-D(real, c)) + softplus(D(sg(fake), c)) + aux_weight |D_aux(real) - c|^2
           + r1_every * r1_gamma / 2 |grad_real D(real, c)|^2      (every r1_every-th forward)
    loss = L_D + L_G

sg(fake) is fake.detach(): no path from L_D reaches G's parameters. D* is D run with its
parameters' requires_grad switched off for that one call (`frozen`): autograd records
no edge to them, so L_G's gradient flows through D into `fake` and on to G, and none of
it lands on D's parameters. d(loss)/d(theta_G) = d(L_G)/d(theta_G) and d(loss)/d(theta_D)
= d(L_D)/d(theta_D) exactly (tests/train/test_train_gan.py checks both against losses
taken apart). This is the pix2pix/CycleGAN `set_requires_grad` trick rather than
torch.func.functional_call with detached parameters: it needs no second copy of the
parameter dict and leaves the spectral-norm parametrisations in place. Nothing stateful
escapes the call: the flags are restored in a `finally`.

One optimizer step then updates both networks at once from the same batch: simultaneous
rather than alternating gradient descent, the same number of G and D steps. Each network
still has its own learning rate: the family gives the optimizer two parameter groups
(`parameter_groups`, a general hook of ModelFamily), D's at optim.lr x model.d_lr_ratio
(the two-timescale rule of Heusel et al. 2017), both following the loop's schedule.
Gradient clipping (zero.gradient_clipping) acts on the norm of both networks' gradients
together. The loop's `loss` is L_D + L_G, a sum with no meaning of its own; the terms
d_loss, g_loss, d_aux, g_aux, r1, d_real and d_fake (mean logits) are logged beside it.

The fix of galaxyCGAN's failure (images that did not scale with mass): the condition
reaches every generator resolution through FiLM (networks.py), D judges the pair
(image, condition) through a projection term, and an auxiliary regression makes the
condition explicit: D learns to read the normalised conditions off real images, and G
is penalised when D reads different ones off its fakes (D's regression is trained on
real images only, so G cannot teach it a private code). The proof is measured, not
assumed: every `model.consistency.every` steps the forward also generates
`consistency.num_samples` galaxies for fixed store rows with fixed seeds and logs the
Spearman correlation of the requested condition (log stellar mass) with their measured
flux and size, per redshift bin (consistency.py). Those terms measure the live
generator, which can swing: in a CPU run of an earlier version (no pixel noise), its
mass-flux correlation per redshift bin went from (+0.87, +0.58, +0.21) to (-0.29, -0.73,
-0.66) within 250 steps and back, while the EMA generator stayed at (+0.84, +0.81,
+0.19): galaxyCGAN's failure, caught in the act. So each sample grid also measures
the generator it is drawn from (the EMA one) into <output_dir>/consistency_log.jsonl,
and at the end the exported (EMA) generator is measured on `report_num_samples` rows
beside the real images of the same rows, into <output_dir>/generator/consistency.json.
The forward knows when to measure from a step counter kept as a module buffer, so it
is checkpointed with the weights and a resumed run measures at the same steps.

EMA: the loop's EMA (ema.enabled) averages every trainable parameter, D's included
(harmless, unused); samples and the exported generator use the averaged G, as
StyleGAN does. ZeRO stages 0-2 (stage 3 partitions the parameters whose flags `frozen`
switches; a GAN of this size does not need it). Export: <output_dir>/generator, loaded
alone by generator.load_generator.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from galaxy_hpc.data.pixel_noise import add_noise, noise_to_add, pixel_noise, store_noise
from galaxy_hpc.models.display import to_display
from galaxy_hpc.models.gan import consistency, fidelity
from galaxy_hpc.models.gan.generator import GalaxyGenerator, noise_for_seeds
from galaxy_hpc.models.gan.networks import (
    ConditionScaler,
    Discriminator,
    SkyNoise,
    generator_from_spec,
)
from galaxy_hpc.models.contract import ModelFamily, item_seed

MONITOR_BATCH = 64


@contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
    """Run `module` without recording gradient edges to its parameters (inputs still get
    gradients through it)."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


class ConsistencyMonitor:
    """Consistency of a generator on fixed store rows, each with its row number as seed
    (as in the final report): the live weights in the training log, the EMA weights with
    each sample grid."""

    def __init__(self, conditions: np.ndarray, rows: np.ndarray, names: list[str], *,
                 requested: str, by: str | None, num_bins: int, stretch: Any,
                 latent_dim: int) -> None:
        self.conditions = np.asarray(conditions, dtype=np.float64)
        self.raw = torch.from_numpy(self.conditions.astype(np.float32))
        self.seeds = rows.tolist()
        self.latent_dim = latent_dim
        self.names, self.requested, self.by, self.num_bins = names, requested, by, num_bins
        self.stretch = stretch

    @torch.no_grad()
    def __call__(self, generator: torch.nn.Module, scaler: ConditionScaler,
                 device: torch.device) -> dict[str, torch.Tensor]:
        parts = []
        for start in range(0, len(self.raw), MONITOR_BATCH):
            z, maps = noise_for_seeds(self.seeds[start:start + MONITOR_BATCH], self.latent_dim,
                                      generator.pixel_noise_shape)
            c = scaler.normalise(self.raw[start:start + MONITOR_BATCH].to(device))
            parts.append(generator(z.to(device), c, maps.to(device)).float().cpu().numpy())
        images = np.asarray(self.stretch.inverse(np.concatenate(parts)), dtype=np.float64)
        found = consistency.measure_consistency(images, self.conditions, self.names,
                                                requested=self.requested, by=self.by,
                                                num_bins=self.num_bins)
        return {k: torch.tensor(v) for k, v in consistency.as_terms(found).items()}


class GanTrainModule(torch.nn.Module):
    """forward(batch) -> (L_D + L_G, terms): see the module docstring."""

    def __init__(self, generator: torch.nn.Module, discriminator: torch.nn.Module,
                 scaler: ConditionScaler, *, r1_gamma: float, r1_every: int, aux_weight: float,
                 monitor: ConsistencyMonitor | None, monitor_every: int,
                 g_aux_weight: float | None = None, diversity_weight: float = 0.0,
                 sky: torch.nn.Module | None = None, information_weight: float = 0.0) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.sky = sky  # adds the survey's pixel noise to what D sees of a fake (or None)
        # Training forwards so far: when to apply lazy R1 and to measure consistency.
        # A buffer, so that checkpoints keep it and a resumed run continues the count.
        self.register_buffer("num_forwards", torch.zeros((), dtype=torch.int64))
        self._scaler = scaler  # float32, outside the module: never cast, never partitioned
        self._monitor = monitor
        self.monitor_every = monitor_every  # forwards (steps x gradient accumulation)
        self.r1_gamma, self.r1_every, self.aux_weight = r1_gamma, r1_every, aux_weight
        self.g_aux_weight = aux_weight if g_aux_weight is None else g_aux_weight
        self.diversity_weight = diversity_weight
        self.information_weight = information_weight  # InfoGAN's, on G's latent category

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real, c = batch["pixel_values"], self._scaler.normalise(batch["conditions"])
        if self.training:
            self.num_forwards += 1
        count = int(self.num_forwards)
        size = real.shape[0]
        noise = torch.randn(size, self.generator.latent_dim, device=real.device)
        pairs = size // 2 if self.diversity_weight > 0 else 0
        c_fake, maps = c, None
        if pairs:
            # Fake k and k + pairs share a condition and pixel noise, and differ in their
            # latent only: how far apart they come out is what the latent does.
            c_fake = torch.cat([c[:pairs], c[:pairs], c[2 * pairs:]])
            maps = torch.randn(pairs, *self.generator.pixel_noise_shape, device=real.device)
            maps = torch.cat([maps, maps, torch.randn(size - 2 * pairs,
                                                      *self.generator.pixel_noise_shape,
                                                      device=real.device)])
        fake = self.generator(noise, c_fake, maps)
        seen = fake if self.sky is None else self.sky(fake)

        informed = self.information_weight > 0
        with frozen(self.discriminator):
            logit_g, read_g, *category_g = self.discriminator(seen, c_fake, informed)
        g_adv = F.softplus(-logit_g).mean()
        g_aux = (read_g - c_fake).pow(2).mean()

        with_r1 = self.training and self.r1_gamma > 0 and (count - 1) % self.r1_every == 0
        real = real.detach().to(fake.dtype).requires_grad_(with_r1)
        logits, read, *category_d = self.discriminator(torch.cat([real, seen.detach()]),
                                                       torch.cat([c, c_fake]), informed)
        logit_real, logit_fake = logits[:size], logits[size:]
        d_adv = F.softplus(-logit_real).mean() + F.softplus(logit_fake).mean()
        d_aux = (read[:size] - c).pow(2).mean()

        loss = d_adv + g_adv + self.aux_weight * d_aux + self.g_aux_weight * g_aux
        terms = {"d_loss": d_adv, "g_loss": g_adv, "d_aux": d_aux, "g_aux": g_aux,
                 "d_real": logit_real.mean(), "d_fake": logit_fake.mean()}
        if pairs:
            # Mode seeking (Mao et al. 2019, MSGAN): image distance per latent distance
            # of the pairs, on a log scale (no image unit sets the weight's meaning).
            apart = (fake[:pairs] - fake[pairs:2 * pairs]).float().abs().mean(dim=(1, 2, 3))
            moved = (noise[:pairs] - noise[pairs:2 * pairs]).abs().mean(dim=1)
            diversity = torch.log((apart / moved).mean() + 1e-8)
            loss = loss - self.diversity_weight * diversity
            terms["g_diversity"] = diversity
        if informed:
            # InfoGAN: D's head learns to read the category off the (detached) fakes, and
            # G, through the frozen head, is rewarded for fakes whose category shows.
            drawn = self.generator.category(noise, c_fake)
            g_info = F.cross_entropy(category_g[0], drawn)
            d_info = F.cross_entropy(category_d[0][size:], drawn)
            loss = loss + self.information_weight * (g_info + d_info)
            terms.update(g_info=g_info, d_info=d_info)
        if with_r1:
            # The gradient of the sum of the real logits with respect to the real images
            # is per-image where D's rows do not interact (no minibatch-stddev feature);
            # with it, each image's also carries its group's share, as in StyleGAN2.
            (grad,) = torch.autograd.grad(logit_real.sum(), real, create_graph=True)
            r1 = grad.float().pow(2).sum(dim=(1, 2, 3)).mean()
            loss = loss + 0.5 * self.r1_gamma * self.r1_every * r1
            terms["r1"] = r1
        if self._monitor is not None and self.training and count % self.monitor_every == 0:
            terms.update(self._monitor(self.generator, self._scaler, real.device))
        return loss, {k: v.detach() for k, v in terms.items()}


def with_noise(images: np.ndarray, target: np.ndarray, seeds: list[int]) -> np.ndarray:
    """Images (N, C, H, W) given the pixel noise each lacks against `target` (C,), image
    k's from a stream of seeds[k] (not the stream its latent came from)."""
    return add_noise(images, noise_to_add(pixel_noise(images), target),
                     [[seed, 1] for seed in seeds])


class GanFamily(ModelFamily):
    def build(self) -> torch.nn.Module:
        cfg, model = self.cfg, self.cfg.model
        self.names = list(cfg.data.condition_columns)
        self.values = self._condition_values()
        self.scaler = ConditionScaler.from_values(self.values)
        shape = [int(v) for v in self.store.spec.image_shape]
        self.spec = {
            "image_shape": shape, "image_dtype": self.store.spec.image_dtype,
            "num_conditions": len(self.names), "condition_names": self.names,
            "condition_mean": self.scaler.mean.tolist(), "condition_std": self.scaler.std.tolist(),
            "latent_dim": model.latent_dim, "condition_dim": model.condition_dim,
            "mapping_layers": model.mapping_layers, "style_dim": model.style_dim,
            "channels": list(model.generator_channels), "norm_groups": model.norm_groups,
            "modulation": model.generator_modulation,
            "latent_categories": model.latent_categories,
            "latent_mixture": model.latent_mixture,
            "stretch": self.stretch.to_dict(), "store": str(self.store.path)}
        generator = generator_from_spec(self.spec)
        discriminator = Discriminator(image_shape=shape, num_conditions=len(self.names),
                                      channels=model.discriminator_channels,
                                      spectral_norm=model.spectral_norm,
                                      minibatch_std_group=model.minibatch_std_group,
                                      condition_layers=model.discriminator_condition_layers,
                                      flux_view=(self._asinh("model.discriminator_flux_view")
                                                 if model.discriminator_flux_view else None),
                                      condition_input=model.discriminator_condition_input,
                                      photometry=(self._asinh("model.discriminator_photometry")
                                                  if model.discriminator_photometry else None),
                                      categories=(generator.num_kinds
                                                  if model.category_information_weight else 0))
        check = model.consistency
        monitor = None
        if check.every:
            rows = consistency.evaluation_rows(len(self.store), check.num_samples)
            monitor = ConsistencyMonitor(self.values[rows], rows, self.names,
                                         requested=check.requested, by=check.by,
                                         num_bins=check.num_bins, stretch=self.stretch,
                                         latent_dim=model.latent_dim)
        self.monitor = monitor
        self._logged_step: int | None = None
        self.sample_conditions = self._grid_conditions(cfg.run.num_samples)
        # The survey's noise, as the export's judge adds it (fidelity.judge): checkpoints
        # are chosen on galaxies measured as the survey would see them.
        # Read once for the job (rank 0), not by every rank: up to 1,000 images.
        survey = (self.data.once(lambda: store_noise(self.store))
                  if model.fidelity.match_noise or model.fake_sky_noise else None)
        self.noise_target = survey if model.fidelity.match_noise else None
        sky = None
        if model.fake_sky_noise:
            sky = SkyNoise(self._asinh("model.fake_sky_noise"), survey.tolist())
        return GanTrainModule(
            generator, discriminator, self.scaler, r1_gamma=model.r1_gamma,
            r1_every=model.r1_every, aux_weight=model.aux_weight, monitor=monitor,
            monitor_every=check.every * cfg.zero.gradient_accumulation_steps,
            g_aux_weight=model.g_aux_weight, diversity_weight=model.diversity_weight, sky=sky,
            information_weight=model.category_information_weight)

    def _asinh(self, field: str) -> dict[str, Any]:
        """The store's stretch, for an option that works in linear flux (float stores)."""
        stretch = self.stretch.to_dict()
        if stretch.get("kind") != "asinh":
            raise ValueError(f"{field} needs a float (linear flux) store; {self.store.path} "
                             f"holds {self.store.spec.image_dtype} images (stretch "
                             f"{stretch.get('kind')!r}): set it to false")
        return stretch

    def _condition_values(self) -> np.ndarray:
        columns = self.store.spec.columns
        for name in self.names:
            if name not in columns:
                raise ValueError(f"data.condition_columns: no column {name!r} in "
                                 f"{self.store.path} (columns: {', '.join(columns)})")
            if columns[name] == "str":
                raise ValueError(f"data.condition_columns: {name!r} in {self.store.path} holds "
                                 "strings; the GAN conditions on numbers")
        values = np.stack([self.store.read_column(n) for n in self.names], axis=1)
        values = values.astype(np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            counts = {n: int(bad[:, j].sum()) for j, n in enumerate(self.names) if bad[:, j].any()}
            where = " and ".join(f"finite({n})" for n in counts)
            path = shlex.quote(str(self.store.path))
            raise ValueError(f"{self.store.path}: non-finite condition values {counts}: the GAN "
                             f"needs every training galaxy's conditions; keep the rows that "
                             f"have them: galaxy-hpc select {path} --where \"{where}\" --out "
                             "NEW_STORE")
        return values

    def _grid_conditions(self, num_images: int) -> np.ndarray:
        """Sample grid: `requested` rising left to right (5%-95% quantiles), `by` rising top
        to bottom (10%-90%), other conditions at their median; one seed per row."""
        check = self.cfg.model.consistency
        columns = math.ceil(math.sqrt(num_images))
        rows = math.ceil(num_images / columns)
        grid = np.tile(np.median(self.values, axis=0), (rows * columns, 1))
        j = self.names.index(check.requested)
        grid[:, j] = np.tile(np.quantile(self.values[:, j], np.linspace(0.05, 0.95, columns)),
                             rows)
        if check.by is not None:
            k = self.names.index(check.by)
            grid[:, k] = np.repeat(np.quantile(self.values[:, k], np.linspace(0.1, 0.9, rows)),
                                   columns)
        self.grid_columns = columns
        return grid[:num_images]

    def parameter_groups(self, module: torch.nn.Module) -> list[dict[str, Any]]:
        return [{"params": [p for p in module.generator.parameters() if p.requires_grad]},
                {"params": [p for p in module.discriminator.parameters() if p.requires_grad],
                 "lr": self.cfg.optim.lr * self.cfg.model.d_lr_ratio}]

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {"pixel_values": batch["pixel_values"].to(self.device, self.dtype),
                "conditions": batch["conditions"].to(self.device, torch.float32),
                "index": batch["index"]}

    # A GAN's training loss (L_D + L_G) does not fall as the generator improves: the two
    # networks trade it. What the held-out set can judge instead is the data's physics,
    # and a distance between distributions is no mean over batches: the whole set is
    # measured, then scored (ModelFamily.whole_set_validation).
    whole_set_validation = True

    def validation_measure(self, module: torch.nn.Module, batch: dict[str, Any]
                           ) -> dict[str, np.ndarray]:
        """Each held-out row drawn `model.fidelity.draws_per_row` times from its conditions
        (the noise of each draw seeded by the row's store index, so every validation draws
        the same, however the rows fall into batches over the ranks), each given the
        survey's pixel noise it lacks (model.fidelity.match_noise, as the export's judge
        does; the added noise seeded the same way), the judged quantities measured on
        those galaxies and on the real images of the rows; and D's
        auxiliary regression error on the real images (val_d_aux: rising while the
        training d_aux falls is D memorising)."""
        section = self.cfg.model.fidelity
        real = batch["pixel_values"]
        c = self.scaler.normalise(batch["conditions"])
        inner = getattr(module, "module", module)  # the engine's module
        generator = inner.generator
        bands = tuple(section.colour_bands)

        def measured(images: torch.Tensor, seeds: list[int] | None = None
                     ) -> dict[str, np.ndarray]:
            values = np.asarray(self.stretch.inverse(images.float().cpu().numpy()),
                                dtype=np.float64)
            if seeds is not None and self.noise_target is not None:
                values = with_noise(values, self.noise_target, seeds)
            return fidelity.measured_quantities(values, bands)

        rows = [int(i) for i in batch["index"]]
        draws = []
        for k in range(section.draws_per_row):
            seeds = [item_seed(self.cfg.run.seed, row, k) for row in rows]
            z, maps = noise_for_seeds(seeds, generator.latent_dim, generator.pixel_noise_shape)
            draws.append(measured(generator(z.to(real.device), c, maps.to(real.device)),
                                  seeds))
        found = measured(real)
        _, read = inner.discriminator(real, c)
        out = {"conditions": batch["conditions"].double().cpu().numpy(),
               "d_aux": (read - c).pow(2).mean(dim=1).double().cpu().numpy()}
        for q in section.judged:
            out[f"real_{q}"] = found[q]
            out[f"generated_{q}"] = np.stack([d[q] for d in draws], axis=1)
        return out

    def validation_score(self, measured: dict[str, np.ndarray]
                         ) -> tuple[float, dict[str, float]]:
        """The held-out rows judged as the exported generator is at the end
        (fidelity.held_out_score): val_loss is the mean W1 / split-half floor over the
        judged cells, lower is better, ~1 for a generator as good as the data's own
        halves, so the best checkpoint is the one whose galaxies match best."""
        section = self.cfg.model.fidelity
        loss, terms = fidelity.held_out_score(
            {q: measured[f"generated_{q}"] for q in section.judged},
            {q: measured[f"real_{q}"] for q in section.judged},
            measured["conditions"], self.names, section)
        return loss, {**terms, "d_aux": float(np.mean(measured["d_aux"]))}

    @torch.no_grad()
    def sample(self, module: torch.nn.Module, num_images: int, seed: int) -> np.ndarray:
        """A grid with mass rising along each row and redshift down the rows; the same
        noise along a row, so that only the condition changes across it."""
        conditions = self.sample_conditions[:num_images]
        row = np.arange(len(conditions)) // self.grid_columns
        generator = module.generator
        z, maps = noise_for_seeds([seed + int(r) for r in row], generator.latent_dim,
                                  generator.pixel_noise_shape)
        c = self.scaler.normalise(torch.from_numpy(conditions.astype(np.float32)).to(self.device))
        images = generator(z.to(self.device), c, maps.to(self.device)).float().cpu().numpy()
        if self.monitor is not None:
            self._log_consistency(module)
        return to_display(images, flux=self.data.flux)

    def _log_consistency(self, module: torch.nn.Module) -> None:
        """With each sample grid: the consistency of the generator the grid comes from (the
        EMA weights when ema.enabled), one JSON line in <output_dir>/consistency_log.jsonl."""
        steps = int(module.num_forwards) // self.cfg.zero.gradient_accumulation_steps
        if steps == self._logged_step:
            return  # the loop's final grid after a sample_every grid at the same step
        self._logged_step = steps
        found = self.monitor(module.generator, self.scaler, self.device)
        record = {"step": steps, "weights": "ema" if self.cfg.ema.enabled else "live",
                  **{k: (float(v) if math.isfinite(float(v)) else None) for k, v in found.items()}}
        with open(Path(self.cfg.run.output_dir) / "consistency_log.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def export(self, state_dict: dict[str, torch.Tensor], output_dir: Path) -> Path:
        network = generator_from_spec(self.spec)
        prefix = "generator."
        network.load_state_dict({k[len(prefix):]: v.float() for k, v in state_dict.items()
                                 if k.startswith(prefix)}, strict=True)
        return GalaxyGenerator(network, self.spec, self.device).save(output_dir / "generator")

    def evaluate_export(self, artifact: Path, output_dir: Path) -> dict[str, Any]:
        """The exported generator, loaded as `generate` loads it, on store rows: the
        conditioning-consistency report (consistency.json) and the fidelity targets
        (fidelity.json, model.fidelity) beside it, from one draw of the same galaxies."""
        from galaxy_hpc.models.gan.generator import load_generator

        generator = load_generator(artifact, self.device)
        check = self.cfg.model.consistency
        rows, conditions = consistency.evaluation_conditions(self.store, self.names,
                                                             check.report_num_samples)
        generated = generator.generate(conditions, rows.tolist())
        real = self.store.read_images_at(rows)
        found = consistency.compare(generated, real, conditions, self.names,
                                    requested=check.requested, by=check.by,
                                    num_bins=check.num_bins)
        (artifact / "consistency.json").write_text(json.dumps(found, indent=2) + "\n")
        print(consistency.summary_line(found), file=sys.stderr, flush=True)
        result: dict[str, Any] = {"consistency": str(artifact / "consistency.json")}
        if self.cfg.model.fidelity.enabled:
            # Draw k of row r has seed r + k x store size: distinct over rows and draws,
            # draw 0 the galaxies above.
            more = [generator.generate(conditions, (rows + k * len(self.store)).tolist())
                    for k in range(1, self.cfg.model.fidelity.draws_per_row)]
            if more:
                generated = np.stack([generated, *more])
            verdict = fidelity.judge(generated, real, conditions, self.names,
                                     self.cfg.model.fidelity, requested=check.requested,
                                     by=check.by, num_bins=check.num_bins)
            (artifact / "fidelity.json").write_text(
                json.dumps(verdict, indent=2, allow_nan=False) + "\n")
            print("\n".join(fidelity.summary_lines(verdict)), file=sys.stderr, flush=True)
            result.update(fidelity=str(artifact / "fidelity.json"),
                          fidelity_met=verdict["met"], **fidelity.figures(verdict))
        return result

    def describe(self) -> str:
        model = self.cfg.model
        return (f"gan ({len(self.cfg.data.condition_columns)} conditions, "
                f"{len(model.generator_channels)} levels, aux_weight={model.aux_weight})")
