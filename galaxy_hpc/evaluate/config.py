"""Typed settings of each evaluation: what the CLI flags and the `evaluate` job config fill in.

Defaults follow torch-fidelity's where a metric comes from it (KID subsets of 1000, 100 of
them, IS over 10 splits, seed 2020, precision/recall with 3 neighbours), so numbers match
what people computed with it. Every mistake is a ValueError naming the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

METRICS = ("fid", "kid", "isc", "prc")
DEVICES = ("auto", "cpu", "cuda")
Device = Literal["auto", "cpu", "cuda"]

def _positive(owner: object, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{type(owner).__name__}.{name} must be a positive integer, "
                             f"got {value!r}")


def default_cache_dir() -> str:
    """$GHPC_EVAL_CACHE, else ~/.cache/galaxy-hpc/eval-stats (beside torch's own cache)."""
    return os.environ.get("GHPC_EVAL_CACHE") or str(
        Path.home() / ".cache" / "galaxy-hpc" / "eval-stats")


@dataclass
class FeatureSettings:
    """Which network turns images into features, and how images reach it."""

    # A torch-fidelity extractor name: inception-v3-compat, dinov2-vit-s-14/b/l/g,
    # clip-vit-b-32 (any clip-*), vgg16, or one that `extractor_module` registers.
    extractor: str = "inception-v3-compat"
    # Local file/folder, or a Hugging Face id (ORG/NAME[/FILE]) in the local cache;
    # nothing is ever downloaded.
    weights: str | None = None
    extractor_module: str | None = None  # imported first: registers its own extractors
    batch_size: int = 64  # images per batch (torch-fidelity's: the same batches, the same features)
    # Float stores: a stretch JSON ({"kind": "asinh", ...}, as a model folder keeps it);
    # None: estimated from the real store, as training estimates it from its store.
    stretch: str | None = None
    rgb_bands: list[int] | None = None  # float stores with 3+ bands: the bands shown as R, G, B
    device: Device = "auto"  # auto: this rank's GPU when there is one, else the CPU

    def __post_init__(self) -> None:
        _check_reading(self)


def _check_reading(section: Any) -> None:
    """The fields every section that reads images through a model has alike."""
    _positive(section, "batch_size")
    if section.device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {section.device!r}")
    if section.rgb_bands is not None and len(section.rgb_bands) != 3:
        raise ValueError(f"rgb_bands needs three band indices (R, G, B), got {section.rgb_bands}")


def require(owner: object, *names: str) -> None:
    """Stores are left empty in the `evaluate` job's sections (the job fills them in):
    at run time each must be given."""
    for name in names:
        if not getattr(owner, name):
            raise ValueError(f"{type(owner).__name__}.{name} is not set: give the {name} path")


@dataclass
class FidConfig:
    """FID, KID, Inception Score, precision/recall (exact over MPI ranks).

    Frechet distance between the feature statistics of the real and the generated store
    (float64 sums over every image, one all-reduce), KID, IS and precision/recall with
    torch-fidelity's estimators. The real store's statistics are cached by checksum and
    extractor.
    """

    real: str = ""  # the real store (REAL_STORE); its statistics are cached
    generated: str = ""  # the generated store (GEN_STORE)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    # Any of fid, kid, isc, prc (fid is always computed).
    metrics: list[str] = field(default_factory=lambda: ["fid", "kid", "isc"])
    # KID and precision/recall need the features themselves, not sums: at most this many
    # per store are kept (all of them when the store is smaller: then the numbers equal
    # torch-fidelity's), else a fixed random subset of this size.
    max_kept_features: int = 10000
    kid_subsets: int = 100  # KID: this many random subsets
    kid_subset_size: int = 1000  # KID: images per subset (at most the smaller store's count)
    isc_splits: int = 10  # Inception Score: mean and spread over this many splits
    prc_neighborhood: int = 3  # precision/recall: k of the k-nearest-neighbour radius
    seed: int = 2020  # KID subsets and the kept features are drawn from it
    cache: bool = True  # reuse the real store's statistics (keyed by checksum and extractor)
    # Where real-store statistics are cached; none: $GHPC_EVAL_CACHE, else
    # ~/.cache/galaxy-hpc/eval-stats, where the job runs (default_cache_dir()).
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        _positive(self, "max_kept_features", "kid_subsets", "kid_subset_size", "isc_splits",
                  "prc_neighborhood")
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise ValueError(f"metrics must be a non-empty list from {', '.join(METRICS)}, "
                             f"got {self.metrics}")
        if "fid" not in self.metrics:
            self.metrics = ["fid", *self.metrics]  # the statistics are always computed


@dataclass
class PhysicsConfig:
    """Flux, size, concentration, asymmetry, Gini/M20, ellipticity (statmorph).

    Measures galaxies of both stores with statmorph on a photutils segmentation, split
    over ranks, and reports the Wasserstein distance per parameter and histograms.
    """

    real: str = ""  # the real store (REAL_STORE)
    generated: str = ""  # the generated store (GEN_STORE)
    # Galaxies measured per store, evenly spaced (statmorph costs ~0.1-0.3 s each).
    max_galaxies: int = 5000
    band: int | None = None  # None: the sum of the bands (as galaxy_hpc.data.photometry)
    num_bins: int = 30  # histogram bins
    threshold_sigmas: float = 1.5  # segmentation: pixels this many sky sigmas above the sky

    def __post_init__(self) -> None:
        _positive(self, "max_galaxies", "num_bins")
        if not self.threshold_sigmas > 0:
            raise ValueError(f"threshold_sigmas must be > 0, got {self.threshold_sigmas}")


@dataclass
class MorphologyConfig:
    """GZ2 vote fractions a predictor sees vs those requested (r, MAE).

    Predicts GZ2 vote fractions of the generated galaxies with a vote predictor (a folder
    with predictor.json, e.g. a trained DINOv2 regressor) and compares them with the
    fractions the catalog requested (its <GZ2 stem>_fraction columns), per question.
    """

    generated: str = ""  # the generated store (GEN_STORE), with the requested vote fractions
    predictor: str = ""  # a folder galaxy_hpc.models.vote_predictor.load_vote_predictor opens
    real: str | None = None  # also score the predictor on real galaxies with known votes
    vote_suffix: str = "fraction"  # requested columns: <GZ2 stem>_<suffix>, all 37 of them
    stretch: str | None = None  # float stores: as FeatureSettings.stretch (default: own store)
    batch_size: int = 64  # images per predictor batch
    device: Device = "auto"  # auto: this rank's GPU when there is one, else the CPU

    def __post_init__(self) -> None:
        _positive(self, "batch_size")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")


FLOOR_GALAXIES = ("auto", "heldout", "all")


@dataclass
class MorphologyFidelityConfig:
    """Morphology fidelity: MAE of predicted vs requested GZ2 fractions beside the predictor floor.

    A vote predictor (e.g. a trained DINOv2 regressor) reads GZ2 vote fractions off the
    generated galaxies; per question, their mean absolute error against the fractions the
    catalog requested (its <GZ2 stem>_fraction columns) is set beside the floor: the same
    predictor's MAE against the true fractions of real galaxies it did not train on. A
    question passes when its MAE is at most `max_mae` and at most `max_floor_ratio` times
    the floor; the catalog passes when every judged question does.
    """

    generated: str = ""  # the generated store (GEN_STORE), with the requested vote fractions
    predictor: str = ""  # a vote predictor folder (predictor.json): a train_dino predictor/
    real: str = ""  # real galaxies with true vote fractions: the predictor's floor
    # Which real galaxies give the floor. heldout: those the predictor's training held out
    # (predictor.json's heldout rule; the real store must be its training store). all:
    # every galaxy (a store it never saw). auto: heldout when predictor.json records a
    # held-out rule for this very store (same checksum), else all.
    floor_galaxies: Literal["auto", "heldout", "all"] = "auto"
    max_mae: float = 0.1  # a question passes with MAE at most this ...
    max_floor_ratio: float = 1.5  # ... and at most this many times the predictor's floor
    # A question counts for a galaxy where at least this share of volunteers reached it
    # (per the requested or true fractions), as the predictor's own held-out metrics count.
    min_reach: float = 0.5
    min_galaxies: int = 20  # a question counted for fewer galaxies (either store): not judged
    num_bins: int = 10  # requested-fraction bins of the requested vs predicted plot
    vote_suffix: str = "fraction"  # requested/true columns: <GZ2 stem>_<suffix>, all 37
    # Float stores: a stretch JSON; none: the predictor's own (predictor.json), else
    # estimated from the real store.
    stretch: str | None = None
    batch_size: int = 64  # images per predictor batch
    device: Device = "auto"  # auto: this rank's GPU when there is one, else the CPU
    # Float (linear flux) stores: add the pixel noise each generated image lacks against
    # the real store's median (per band) before the predictor reads it, as the
    # conditioning evaluation does, so a perfect noise-free generator reads at the floor
    # (measured on noisy real galaxies). uint8 composites are read as drawn, saying why
    # (their noise went through a stretch). false: read as drawn. Both noise levels are
    # reported either way (galaxy_hpc.data.pixel_noise).
    match_noise: bool = True
    seed: int = 0  # the added noise of generated image i is drawn from (seed, i)

    def __post_init__(self) -> None:
        _positive(self, "batch_size", "min_galaxies", "num_bins")
        if not isinstance(self.match_noise, bool):
            raise ValueError(f"match_noise must be true or false, got {self.match_noise!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.floor_galaxies not in FLOOR_GALAXIES:
            raise ValueError(f"floor_galaxies must be one of {', '.join(FLOOR_GALAXIES)}, got "
                             f"{self.floor_galaxies!r}")
        if not (self.max_mae > 0 and self.max_floor_ratio > 0):
            raise ValueError(f"max_mae and max_floor_ratio must be > 0, got {self.max_mae} "
                             f"and {self.max_floor_ratio}")
        if not 0 <= self.min_reach <= 1:
            raise ValueError(f"min_reach must be in [0, 1], got {self.min_reach}")


@dataclass
class ConditioningConfig:
    """Rank correlation of requested vs measured quantities, and conditional fidelity per cell.

    Spearman rho between what a conditional model was asked for (columns of the generated
    store, e.g. log_stellar_mass) and what its images show (total flux, half-light
    radius, ...), overall and within quantile bins of `by`, with bootstrap intervals.
    With a real store, also conditional fidelity (galaxy_hpc.data.fidelity): per cell
    of a grid over condition columns, the generated and real distributions of log flux,
    half-light radius, colour and concentration (medians, scatter, Wasserstein-1) against
    the real cell's split-half noise floor: "within noise", "off by k sigma" or "too
    sparse".
    """

    generated: str = ""  # the generated store (GEN_STORE), with the requested columns
    # "requested:measured" pairs; measured is one of total_flux, half_light_radius, colour,
    # concentration (galaxy_hpc.data.photometry), requested a numeric column of the
    # generated store.
    pairs: list[str] = field(default_factory=lambda: [
        "log_stellar_mass:total_flux", "log_stellar_mass:half_light_radius",
        "redshift:total_flux"])
    by: str | None = "redshift"  # also within quantile bins of this column (if it exists)
    num_bins: int = 3  # quantile bins of `by`
    real: str | None = None  # the same correlations on real galaxies, and the fidelity cells
    batch_size: int = 256  # images measured per read
    # Fidelity cells: quantile bins of each of these condition columns (numeric columns of
    # both stores; the bins are the real store's quantiles). Empty: one cell, every galaxy.
    grid: list[str] = field(default_factory=lambda: ["redshift", "log_stellar_mass"])
    grid_bins: int = 3  # quantile bins per grid column (3 x 3 cells for two columns)
    # Compared per cell: any of log_flux (log10 total flux), half_light_radius, colour,
    # concentration (5 log10 r80/r20).
    quantities: list[str] = field(default_factory=lambda: list(FIDELITY_QUANTITIES))
    # colour = m[a] - m[b] of these two bands (g - r for synthetic flux stores with bands
    # g, r, i); on uint8 RGB stores a colour of the picture; none on one-band stores.
    colour_bands: list[int] = field(default_factory=lambda: [0, 1])
    min_per_cell: int = 30  # a cell with fewer galaxies in either store is "too sparse"
    num_splits: int = 50  # random split halves of each real cell: the noise floor's mean, std
    tolerance_sigmas: float = 3.0  # "within noise" while W1 <= floor + this many floor stds
    num_bootstrap: int = 200  # resamples for the 68% intervals of each Spearman rho
    seed: int = 0  # the split halves and the bootstrap resamples are drawn from it
    # auto: a catalog that drew every condition row the same K > 1 times (generate's
    # conditions.per_row; its source_row column) is judged as K draws of those rows, each
    # cell's W1 the mean of the draws' and the floor scaled to one draw, as a GAN run's
    # fidelity.json (galaxy_hpc.data.fidelity); any other catalog as one sample. pooled:
    # every galaxy as one sample, always.
    draws: str = "auto"
    # With a real store: add the pixel noise each generated image lacks against the real
    # store's median (per band) before measuring it, as a mock catalogue adds a survey's
    # noise; a noise-free image reads larger half-light radii (galaxy_hpc.data.
    # pixel_noise). Float (linear flux) stores only: uint8 composites are measured as
    # drawn, saying why. false: measure generated images as drawn. Both noise levels are
    # reported either way.
    match_noise: bool = True

    def __post_init__(self) -> None:
        _positive(self, "num_bins", "batch_size", "grid_bins", "min_per_cell",
                  "num_bootstrap")
        if not isinstance(self.match_noise, bool):
            raise ValueError(f"match_noise must be true or false, got {self.match_noise!r}")
        if self.draws not in DRAWS:
            raise ValueError(f"draws must be one of {', '.join(DRAWS)}, got {self.draws!r}")
        for pair in self.pairs:
            requested, _, measured = pair.partition(":")
            if not requested or measured not in MEASURED:
                raise ValueError(f"conditioning pair {pair!r}: write requested:measured with "
                                 f"measured one of {', '.join(MEASURED)}")
        unknown = [q for q in self.quantities if q not in FIDELITY_QUANTITIES]
        if unknown or not self.quantities:
            raise ValueError(f"quantities must be a non-empty list from "
                             f"{', '.join(FIDELITY_QUANTITIES)}, got {self.quantities}")
        if isinstance(self.num_splits, bool) or not isinstance(self.num_splits, int) \
                or self.num_splits < 2:
            raise ValueError(f"num_splits must be an integer >= 2 (a floor needs a spread), "
                             f"got {self.num_splits!r}")
        if len(self.colour_bands) != 2 or self.colour_bands[0] == self.colour_bands[1]:
            raise ValueError(f"colour_bands needs two different band indices, got "
                             f"{self.colour_bands}")
        if not self.tolerance_sigmas > 0:
            raise ValueError(f"tolerance_sigmas must be > 0, got {self.tolerance_sigmas}")


MEASURED = ("total_flux", "half_light_radius", "colour", "concentration")
FIDELITY_QUANTITIES = ("log_flux", "half_light_radius", "colour", "concentration")
DRAWS = ("auto", "pooled")


@dataclass
class ClipScoreConfig:
    """CLIP score of generated galaxies against their captions (mean and std).

    100 x the cosine between each image's and its caption's CLIP embeddings (torchmetrics'
    CLIPScore), from a local CLIP folder (transformers CLIPModel + CLIPProcessor), over every
    image of the store, split over ranks in whole batches; the per-image scores are cached
    by the store's checksum and the CLIP folder.
    """

    generated: str = ""  # the generated store (GEN_STORE), with a caption column
    weights: str = ""  # a CLIP folder (CLIPModel + CLIPProcessor save_pretrained); no download
    caption_column: str = "caption"  # the captions the images were generated from
    # Float stores: a stretch JSON (as FeatureSettings.stretch); None: from the store itself.
    stretch: str | None = None
    rgb_bands: list[int] | None = None  # float stores with 3+ bands: the bands shown as R, G, B
    batch_size: int = 64  # images per batch (the same batches on any number of ranks)
    device: Device = "auto"  # auto: this rank's GPU when there is one, else the CPU
    cache: bool = True  # reuse per-image scores (keyed by checksum, CLIP folder, pixel map)
    cache_dir: str | None = None  # none: as FidConfig.cache_dir

    def __post_init__(self) -> None:
        _check_reading(self)
