"""Config of the conditional GAN (`kind: train_gan`). Imports no torch: `galaxy-hpc config`
reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from galaxy_hpc.data.section import DataSection

# galaxyCGAN's conditions, and what the GAN is conditioned on unless told otherwise.
DEFAULT_CONDITIONS = ("redshift", "log_stellar_mass")


@dataclass
class ConsistencySection:
    """The conditioning-consistency metric (galaxy_hpc.data.photometry.consistency): Spearman
    rank correlation between the `requested` condition and the measured total flux (and
    half-light radius) of generated galaxies, overall and within `num_bins` quantile bins
    of `by`. Computed on `num_samples` generated galaxies whose conditions are store rows
    (fixed, spread over the store) every `every` optimizer steps during training (logged
    as loss terms), and on `report_num_samples` from the exported (EMA) generator at the
    end (consistency.json beside it)."""

    requested: str = "log_stellar_mass"
    by: str | None = "redshift"  # null: overall only
    every: int = 100  # optimizer steps; 0: only the final report
    num_samples: int = 256
    report_num_samples: int = 1024
    num_bins: int = 3

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ValueError(f"consistency.every must be >= 0, got {self.every}")
        for name in ("num_samples", "report_num_samples"):
            if getattr(self, name) < 16:
                raise ValueError(f"consistency.{name} must be >= 16 (a rank correlation of "
                                 f"fewer galaxies is noise), got {getattr(self, name)}")
        if self.num_bins < 1:
            raise ValueError(f"consistency.num_bins must be >= 1, got {self.num_bins}")


# model.generator_modulation's values (networks.GeneratorBlock builds each).
GENERATOR_MODULATIONS = ("film", "demod")

FIDELITY_QUANTITIES = ("log_flux", "half_light_radius", "colour", "concentration")


@dataclass
class FidelitySection:
    """The targets a recipe is stated in, judged on the exported generator at the end, on
    the same store rows and images as consistency.json (fidelity.json beside it, the
    verdict in the run's train_result.json): per bin of consistency.by, the Spearman rho
    of the requested condition with measured flux and size within `max_rho_difference` of
    the real images'; per cell of a grid over the condition columns (`grid_bins` quantile
    bins each), the Wasserstein-1 distance of each `judged` quantity at most
    `max_w1_over_floor` times the real cell's split-half floor. The statistics are those
    of `evaluate conditioning` (its config documents min_per_cell, num_splits,
    tolerance_sigmas and num_bootstrap)."""

    enabled: bool = True  # false: consistency.json only
    # Quantities whose per-cell W1 is judged (all four are reported).
    judged: list[str] = field(default_factory=lambda: ["log_flux", "half_light_radius"])
    max_rho_difference: float = 0.1  # |rho generated - rho real| per bin, flux and size
    max_w1_over_floor: float = 1.5  # per cell; a perfect generator reads ~1
    grid_bins: int = 3  # quantile bins per condition column: 9 cells for (z, log M*)
    colour_bands: list[int] = field(default_factory=lambda: [0, 1])  # g - r on synth stores
    min_per_cell: int = 30  # fewer in a cell: "too sparse", which fails the target
    # Galaxies drawn per judged row (seeds row + k x store size): the cells' W1 is the mean
    # over draws, the same expected value with less of the generator's sampling noise
    # (galaxy_hpc.data.fidelity). The trends use the first draw (consistency.json's).
    draws_per_row: int = 4
    num_splits: int = 50  # split-half draws of each real cell (its floor)
    tolerance_sigmas: float = 3.0  # the per-cell "within noise" verdict reported beside
    num_bootstrap: int = 200  # resamples for the 68% intervals of each rho
    seed: int = 0
    # Add the pixel noise generated images lack against the real ones before measuring
    # (galaxy_hpc.data.pixel_noise: a noise-free image reads larger radii); false measures
    # them as drawn. Both noise levels are reported either way.
    match_noise: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.match_noise, bool):
            raise ValueError(f"model.fidelity.match_noise must be true or false, got "
                             f"{self.match_noise!r}")
        unknown = [q for q in self.judged if q not in FIDELITY_QUANTITIES]
        if unknown or not self.judged:
            raise ValueError(f"model.fidelity.judged must name some of "
                             f"{', '.join(FIDELITY_QUANTITIES)}, got {self.judged}")
        if not self.max_rho_difference > 0 or not self.max_w1_over_floor > 0:
            raise ValueError("model.fidelity.max_rho_difference and max_w1_over_floor must be "
                             f"> 0, got {self.max_rho_difference}, {self.max_w1_over_floor}")
        for name in ("grid_bins", "min_per_cell", "num_bootstrap", "draws_per_row"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.fidelity.{name} must be >= 1, got "
                                 f"{getattr(self, name)}")
        if self.num_splits < 2:
            raise ValueError(f"model.fidelity.num_splits must be >= 2, got {self.num_splits}")
        if len(self.colour_bands) != 2 or min(self.colour_bands) < 0:
            raise ValueError("model.fidelity.colour_bands must be two band indices, got "
                             f"{self.colour_bands}")


@dataclass
class GanModelConfig:
    latent_dim: int = 128  # noise per galaxy
    condition_dim: int = 128  # width of the learned embedding of the normalised conditions
    mapping_layers: int = 2  # MLP from [noise, condition embedding] to the style w
    style_dim: int = 256
    # Generator widths from its first (smallest) resolution up to the image; the image side
    # is halved (rounding up) len - 1 times to get the resolutions, so 50 px with 4
    # entries runs at 7, 13, 25, 50 and 128 px at 16, 32, 64, 128.
    generator_channels: list[int] = field(default_factory=lambda: [256, 256, 128, 64])
    # Discriminator widths from the image down (the same resolutions in reverse).
    discriminator_channels: list[int] = field(default_factory=lambda: [64, 128, 256, 256])
    norm_groups: int = 8  # GroupNorm groups in the generator (per-image: no batch statistics)
    # How w reaches the generator's convolutions: "film" (GroupNorm, then a per-channel
    # scale and shift; norm_groups applies) or "demod" (StyleGAN2's weight demodulation:
    # the weights scaled per image, no normalisation of the activations, so the ratio of
    # faint outskirts to the core is not rescaled by per-image statistics; networks.py).
    generator_modulation: str = "film"
    # N > 0: the latent's first entry also picks one of N equally likely categories, shown
    # to G's mapping as a one-hot (networks.Generator): a switch between kinds of galaxy
    # that a smooth map of a Gaussian latent does not have. 0: none. Saved in the export.
    latent_categories: int = 0
    # A switch between two kinds of galaxy whose odds move with the conditions (the share
    # of spheroids rises with mass): the latent's first entry against a threshold G learns
    # as a function of the conditions (networks.Generator). Not with latent_categories.
    # Saved in the export.
    latent_mixture: bool = False
    # InfoGAN's term for those categories or the mixture's two kinds (Chen et al. 2016):
    # D also reads the category back off each fake (a linear head on its pooled
    # features), and G is rewarded when it can, weight x cross-entropy on both sides.
    # Without it nothing makes G draw the categories apart, and a one-hot it may ignore
    # is no switch. Needs latent_categories > 0 or latent_mixture. 0: off (D has no
    # such head).
    category_information_weight: float = 0.0
    # Spectral norm on every discriminator layer but the regression head. Off by default:
    # measured on small runs, it slowed D's regression of the conditions so much that G's
    # mass-flux correlation swung between -0.9 and +0.9 from one check to the next; R1
    # alone kept it at +0.9 (tests/train/test_train_gan.py trains the same toy).
    spectral_norm: bool = False
    r1_gamma: float = 1.0  # R1 penalty gamma/2 |grad_x D(x_real)|^2; 0 turns it off
    r1_every: int = 4  # lazy R1 (StyleGAN2): every k-th forward, weighted by k
    # Auxiliary regression: D also predicts the normalised conditions of real images, and
    # G is penalised when D reads back other conditions than it asked for (the direct fix
    # of galaxyCGAN's images that did not follow the condition).
    aux_weight: float = 1.0
    # G's share of that regression (null: aux_weight). Pulling every fake towards the
    # conditions D reads off a *typical* real galaxy makes galaxies of one condition more
    # alike than the data's (an over-stated mass-flux trend per redshift bin): D's regression
    # is fitted to real galaxies' conditional means, so an atypical real galaxy is read
    # back with the wrong mass, and G is penalised for drawing one. 0 leaves conditioning
    # to the projection term, which matches the whole conditional distribution.
    generator_aux_weight: float | None = None
    # Mode seeking (MSGAN): G also maximises weight x log(image distance / latent
    # distance) of pairs of fakes with one condition and pixel noise: without it, the
    # latent can be all but ignored, and galaxies of one condition come out near copies
    # (a narrower flux and size distribution per condition than the data's). 0: off.
    diversity_weight: float = 0.0
    # D's minibatch-stddev feature (StyleGAN): the features' std over groups of this many
    # images, one extra channel before its last convolution, so that D can see a batch of
    # too-alike fakes. 0: off.
    minibatch_std_group: int = 0
    # How D's projection term sees the (normalised) conditions: 0, a linear map (the
    # logit's dependence on the conditions is then linear in them, for any image); N > 0,
    # an MLP of N hidden layers of D's last width, so D can judge a conditional
    # distribution that bends with the conditions (a flux limit's edge moving with
    # redshift). Only D changes: exported generators are the same either way.
    discriminator_condition_layers: int = 0
    # D also sees each image in linear flux (float stores only): the asinh stretch the
    # networks work in compresses a galaxy's core logarithmically, so a core 20% faint
    # moves its stretched pixels by less than 0.1; in linear flux by ~0.3. Each band's
    # flux / the stretch's upper value, mapped to [-1, 1] like the stretched band, is an
    # extra input channel. Only D changes: exported generators are the same either way.
    discriminator_flux_view: bool = False
    # D also reads the (normalised) conditions as constant input maps beside the image, so
    # its first convolutions can weigh a galaxy's extent against its redshift and mass (the
    # projection term sees them only against D's pooled features). Only D changes.
    discriminator_condition_input: bool = False
    # D's logit also has a term of the conditions and a few numbers of each image's light
    # (band-summed flux in Gaussian windows of 1-8 px about the centre, asinh-scaled:
    # networks.PhotometryView), through an MLP: D can weigh a galaxy's flux and extent
    # against the conditions directly, as the judges do per cell. Float stores only;
    # only D changes.
    discriminator_photometry: bool = False
    # G draws noise-free galaxies and D sees each fake with the survey's white pixel noise
    # added (the store's median per band, measured as the judges measure it, added in
    # linear flux; float stores only). Without it G imitates the sky's noise with textures
    # of its own (one seed of the recipe drew sky fluctuations on 4 px scales 1.6x the
    # data's). With it the exported generator draws noise-free galaxies (generate's noise
    # section and the judges' match_noise give them the survey's noise); on the synthetic
    # set it made the sizes worse (docs/train.md: hidden from D, the sky is not learned).
    fake_sky_noise: bool = False
    d_lr_ratio: float = 1.0  # discriminator lr = optim.lr x this (two-timescale rule)
    consistency: ConsistencySection = field(default_factory=ConsistencySection)
    fidelity: FidelitySection = field(default_factory=FidelitySection)

    def __post_init__(self) -> None:
        for name in ("latent_dim", "condition_dim", "style_dim", "norm_groups"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.generator_modulation not in GENERATOR_MODULATIONS:
            raise ValueError(f"model.generator_modulation must be one of "
                             f"{GENERATOR_MODULATIONS}, got {self.generator_modulation!r}")
        if self.latent_categories < 0:
            raise ValueError(f"model.latent_categories must be >= 0, got {self.latent_categories}")
        if self.category_information_weight < 0:
            raise ValueError("model.category_information_weight must be >= 0, got "
                             f"{self.category_information_weight}")
        if self.latent_mixture and self.latent_categories:
            raise ValueError("model.latent_mixture and model.latent_categories both switch on "
                             "the latent's first entry: set one")
        if (self.category_information_weight and not self.latent_categories
                and not self.latent_mixture):
            raise ValueError("model.category_information_weight needs model.latent_categories "
                             "> 0 or model.latent_mixture: there are no categories for D to "
                             "read back")
        if self.mapping_layers < 1:
            raise ValueError(f"model.mapping_layers must be >= 1, got {self.mapping_layers}")
        for name in ("generator_channels", "discriminator_channels"):
            widths = getattr(self, name)
            if len(widths) < 2 or any(w < 1 for w in widths):
                raise ValueError(f"model.{name} needs at least 2 positive widths (one per "
                                 f"resolution), got {widths}")
        if len(self.generator_channels) != len(self.discriminator_channels):
            raise ValueError(
                f"model.generator_channels ({len(self.generator_channels)} entries) and "
                f"model.discriminator_channels ({len(self.discriminator_channels)}) must have "
                "one width per resolution each: the same number of entries")
        if any(w % self.norm_groups for w in self.generator_channels):
            raise ValueError(f"every entry of model.generator_channels {self.generator_channels}"
                             f" must be a multiple of model.norm_groups ({self.norm_groups})")
        if self.r1_gamma < 0 or self.r1_every < 1:
            raise ValueError("model.r1_gamma must be >= 0 and model.r1_every >= 1, got "
                             f"{self.r1_gamma}, {self.r1_every}")
        if self.aux_weight < 0:
            raise ValueError(f"model.aux_weight must be >= 0, got {self.aux_weight}")
        if self.generator_aux_weight is not None and self.generator_aux_weight < 0:
            raise ValueError("model.generator_aux_weight must be >= 0 (or null: aux_weight), "
                             f"got {self.generator_aux_weight}")
        if self.discriminator_condition_layers < 0:
            raise ValueError("model.discriminator_condition_layers must be >= 0, got "
                             f"{self.discriminator_condition_layers}")
        if self.diversity_weight < 0 or self.minibatch_std_group < 0:
            raise ValueError("model.diversity_weight and model.minibatch_std_group must be "
                             f">= 0, got {self.diversity_weight}, {self.minibatch_std_group}")
        if not self.d_lr_ratio > 0:
            raise ValueError(f"model.d_lr_ratio must be > 0, got {self.d_lr_ratio}")

    @property
    def g_aux_weight(self) -> float:
        """The weight of G's auxiliary term: generator_aux_weight, or aux_weight when null."""
        return self.aux_weight if self.generator_aux_weight is None else self.generator_aux_weight

    @staticmethod
    def default_data() -> DataSection:
        return DataSection(caption_column=None, condition_columns=list(DEFAULT_CONDITIONS))

    def check_config(self, cfg: Any) -> None:
        """The whole training config, once built (galaxy_hpc/train/config.py)."""
        # A `data:` section in YAML builds a DataSection with its own (empty) default: an
        # empty list means the GAN's default conditions.
        if not cfg.data.condition_columns:
            cfg.data.condition_columns = list(DEFAULT_CONDITIONS)
        if cfg.data.caption_column is not None:
            raise ValueError("data.caption_column: the GAN conditions on numeric columns "
                             "(data.condition_columns), not captions")
        columns = cfg.data.condition_columns
        if len(set(columns)) != len(columns):
            raise ValueError(f"data.condition_columns has duplicates: {columns}")
        check = self.consistency
        for name in ("requested", "by"):
            value = getattr(check, name)
            if value is not None and value not in columns:
                raise ValueError(f"model.consistency.{name} is {value!r}, which is not among "
                                 f"data.condition_columns {columns}: name one of them (by may "
                                 "be null)")
        if check.by is not None and check.by == check.requested:
            raise ValueError("model.consistency.by must differ from model.consistency.requested")
        if cfg.zero.stage == 3:
            raise ValueError(
                "zero.stage 3 is not supported by the GAN: its generator loss runs the "
                "discriminator with frozen parameters (galaxy_hpc/models/gan/family.py), "
                "which ZeRO-3's partitioned parameters do not allow; use stage 2 (a GAN "
                "of this kind fits on one GPU many times over)")
