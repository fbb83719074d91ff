"""Config of catalog generation (`kind: generate`). Imports no torch: `galaxy-hpc config`
and `galaxy-hpc submit` validate it on a login node.

Everything that decides a catalog's bytes is here (model, sampler, size, seed, conditions,
shard and batch sizes, precision), so a config plus its model and condition files names a
catalog exactly; `runtime` holds what only decides speed (device, threads, compile).
File paths (empty ones included) are checked when the job starts, not at load time: the
config may be validated where the files are not (a login node without the scratch mount).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass
class ModelSection:
    """Which generator, from which local folder (nothing is downloaded).

    kind: a generator galaxy_hpc/registry.py names (e.g. galaxy_hpc/models/sd/generation.py):
    - sd: a StableDiffusionPipeline folder (a full fine-tune's `pipeline/`, or SD-1.5).
    - sd_lora: `base` a StableDiffusionPipeline folder, `path` the LoRA folder (or its
      pytorch_lora_weights.safetensors) that `pipe.load_lora_weights` takes.
    - ldm: a GalaxyLDMPipeline folder (conditions on numbers, e.g. GZ2 vote fractions).
    - gan: the generator/ folder of a train_gan run (conditions on numbers, by default
      redshift and log stellar mass; no sampler); options.batch_size fixes its batch shape.
    """

    kind: str = "sd"
    # Folders as above; each may also be a Hugging Face id (ORG/NAME, ORG/NAME/subfolder)
    # in the local cache, fetched beforehand with `huggingface-cli download`.
    path: str = ""
    base: str | None = None
    lora_scale: float = 1.0
    # Fold the LoRA into the base weights once at load: no extra matmuls per step.
    fuse_lora: bool = True
    # Anything a plug-in generator needs beyond these (passed to its loader as is).
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from galaxy_hpc.registry import GENERATORS, generator_spec

        if not self.kind:
            raise ValueError(f"model.kind is empty: name a generator "
                             f"({', '.join(sorted(GENERATORS))})")
        spec = generator_spec(self.kind)
        if spec.needs_base and not self.base:
            self.base = self._recorded_base()
        if not spec.needs_base and self.base:
            needing = ", ".join(sorted(n for n, g in GENERATORS.items() if g.needs_base))
            raise ValueError(f"model.base is only for kinds that load onto a base ({needing}), "
                             f"not {self.kind!r}")
        if not self.lora_scale > 0:
            raise ValueError(f"model.lora_scale must be > 0, got {self.lora_scale}")

    def _recorded_base(self) -> str:
        """The base the adapter at `path` records (its base.json, written by training),
        when model.base is not given."""
        from galaxy_hpc.models.lora import BASE_RECORD, recorded_base

        recorded = recorded_base(self.path) if self.path and Path(self.path).exists() else None
        if recorded is None:
            raise ValueError(f"model.base (--base): a {self.kind} model needs the base pipeline "
                             f"folder it was trained on (model.path is the adapter itself, "
                             f"and it records no base in {BASE_RECORD})")
        if not recorded.is_dir():
            raise FileNotFoundError(f"model.base (--base): {self.path} was trained on "
                                    f"{recorded} ({BASE_RECORD}), which is not there: give "
                                    f"the base pipeline folder")
        return str(recorded)


@dataclass
class SamplerSection:
    """The diffusion sampler (ignored by generators that do not sample, e.g. a GAN).

    name: ddim, dpm_solver++ (DPMSolverMultistepScheduler, second order),
    dpm_solver++_sde (its stochastic form) or euler_ancestral. The stochastic ones take
    their noise from each object's own generator, so they are as reproducible as the
    others, and they correct part of a model's errors that the deterministic ones carry
    through (galaxy_hpc/models/samplers.py). Built from the model's own scheduler config, so
    the beta schedule (a zero terminal SNR included), timestep spacing and prediction type
    are the model's.
    """

    name: Literal["ddim", "dpm_solver++", "dpm_solver++_sde", "euler_ancestral"] = "dpm_solver++"
    steps: int = 25
    guidance_scale: float = 7.5
    eta: float = 0.0  # DDIM only: 0 deterministic DDIM, 1 DDPM-like

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"sampler.steps must be >= 1, got {self.steps}")
        if self.guidance_scale < 1:
            raise ValueError(f"sampler.guidance_scale must be >= 1 (1: no classifier-free "
                             f"guidance), got {self.guidance_scale}")
        if not 0 <= self.eta <= 1:
            raise ValueError(f"sampler.eta must be in [0, 1], got {self.eta}")


@dataclass
class ConditionSection:
    """Where each object's condition comes from.

    source:
    - table: a CSV or FITS table; each row gives captions (`caption_column`) or numbers
      (`columns`: GZ2 vote fractions, redshift and log stellar mass, ...).
    - store: a real store (hpc.store); rows drawn from it (selection: sample) with rows
      holding a rare class `oversample` times as likely, or each row in turn.
    With `img2img: true` (store source, SD models) each object starts from its row's real
    image, noised to `strength` (1: pure noise, i.e. text-to-image): GalaxySD's way to keep
    text-only samples from coming out over-bright.

    selection: each (object i uses row i // per_row) or sample (row drawn per object from
    the catalog seed; needs num_objects). Default: each for a table, sample for a store.
    """

    source: Literal["table", "store"] = "table"
    path: str = ""
    selection: Literal["each", "sample"] | None = None
    per_row: int = 1
    caption_column: str = "caption"
    # Numeric conditions, in the model's order; null: the columns the model was trained on.
    columns: list[str] | None = None
    id_column: str | None = None  # null: id, objid, dr7objid or galaxyid if present
    prompt: str | None = None  # one caption for every object (overrides caption_column)
    negative_prompt: str = ""
    survey: str = "sdss"  # caption prefix when captions are made from GZ2 vote fractions
    # Oversampling (selection: sample): a class is rare when fewer than rare_fraction of
    # the rows carry it; rows carrying a rare class get weight `oversample`. Classes are
    # class_column's values, else the tags of the rows' captions ("merger", "ring galaxy").
    oversample: float = 1.0
    rare_fraction: float = 0.1
    class_column: str | None = None
    img2img: bool = False
    strength: float = 0.6
    # Numeric source columns copied to every object (what a galaxy was drawn from, beside
    # what the model was given). null: the 37 GZ2 vote fractions when the rows have them
    # under store names, so that `evaluate morphology` can compare a caption catalog with
    # the votes its captions came from; [] for none.
    carry_columns: list[str] | None = None

    def __post_init__(self) -> None:
        if self.per_row < 1:
            raise ValueError(f"conditions.per_row must be >= 1, got {self.per_row}")
        if self.oversample < 1:
            raise ValueError(f"conditions.oversample must be >= 1 (1: as in the source), got "
                             f"{self.oversample}")
        if not 0 < self.rare_fraction < 1:
            raise ValueError(f"conditions.rare_fraction must be in (0, 1), got "
                             f"{self.rare_fraction}")
        if self.img2img and self.source != "store":
            raise ValueError("conditions.img2img needs source: store (the real galaxies the "
                             "objects start from)")
        if not 0 < self.strength <= 1:
            raise ValueError(f"conditions.strength must be in (0, 1], got {self.strength}")
        if self.oversample > 1 and self.resolved_selection != "sample":
            raise ValueError("conditions.oversample needs selection: sample (rows are drawn "
                             "with weights); with selection each every row is used in turn")
        if self.columns is not None and not self.columns:
            raise ValueError("conditions.columns is empty: list the columns, or null for the "
                             "model's own")

    @property
    def resolved_selection(self) -> str:
        if self.selection is not None:
            return self.selection
        return "each" if self.source == "table" else "sample"


@dataclass
class NoiseSection:
    """Survey pixel noise added to every generated image after it is drawn, for catalogs
    meant to look as the survey records galaxies (a mock catalogue). A diffusion model
    decodes through a smoothing autoencoder and draws galaxies almost free of pixel noise;
    a measurement made on them (radii, shapes, a classifier's reading) is then made on
    images no survey takes. Each image gets the Gaussian noise it lacks against the target,
    per band (the quadrature difference: an image as noisy already gets none), drawn from
    its own stream of (catalog seed, object index), and the sigma added is a column of the
    catalog. Float (linear flux) catalogs only: a uint8 composite's noise went through the
    survey's stretch (galaxy_hpc.data.pixel_noise.matchable). Off (neither set): images as
    drawn. galaxy_hpc.data.pixel_noise says how pixel noise is measured."""

    # A store of survey images in the catalog's pixel units (same bands, float): its
    # median pixel noise per band is the target. E.g. the store the model trained on.
    match: str | None = None
    sigma: list[float] | None = None  # or the target per band, in the catalog's pixel units
    max_images: int = 1000  # images of `match` measured, spread evenly over it

    def __post_init__(self) -> None:
        import math

        if self.match is not None and self.sigma is not None:
            raise ValueError("noise: give match (a store to take the noise of) or sigma (the "
                             "noise per band), not both")
        if self.match == "":
            raise ValueError("noise.match is empty: give a store's path, or null for no noise")
        if self.sigma is not None:
            if isinstance(self.sigma, (int, float)) or not self.sigma:
                raise ValueError(f"noise.sigma must be a list of one sigma per band, got "
                                 f"{self.sigma!r}")
            if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
                       for v in self.sigma):
                raise ValueError(f"noise.sigma must be finite and >= 0, got {self.sigma!r}")
            self.sigma = [float(v) for v in self.sigma]
        if self.max_images < 1:
            raise ValueError(f"noise.max_images must be >= 1, got {self.max_images}")

    @property
    def enabled(self) -> bool:
        return self.match is not None or self.sigma is not None


@dataclass
class RuntimeSection:
    """How fast, not what: none of these change which objects a catalog holds, but bytes
    are only guaranteed identical on the same hardware, software and (on CPU) number of
    threads per rank (float sums run in another order otherwise)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda:<local rank> if any GPU
    # auto: bf16 on GPUs that have it, else fp16; fp32 on CPU. Part of the catalog's
    # identity (different precision, different bytes).
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    cpu_threads: int | None = None  # null: torch's default (OMP_NUM_THREADS under Slurm)
    compile: bool = False  # torch.compile the UNet: minutes once, then faster steps
    # cuDNN/cuBLAS deterministic algorithms on GPU; off, reruns may differ in low bits.
    deterministic: bool = True

    def __post_init__(self) -> None:
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ValueError(f"runtime.cpu_threads must be >= 1 or null, got {self.cpu_threads}")


@dataclass
class GenerateConfig:
    out: str = "runs/catalog.zarr"
    # Objects in the catalog; null: one per condition row times per_row (selection each).
    num_objects: int | None = None
    seed: int = 0
    # null: from the suffix of out (.h5/.hdf5: hdf5, .zarr: zarr), zarr without one;
    # a format that contradicts the suffix is an error (hpc.store.backend_for_path).
    format: Literal["zarr", "hdf5"] | None = None
    shard_size: int = 256  # objects per store shard: the unit ranks take and resume redoes
    batch_size: int = 16  # objects per sampler call (a multiple of it per shard is best)
    size: int | None = None  # image side in pixels; null: the model's own
    table: str | None = None  # the FITS table; null: beside the store, <out stem>.fits
    overwrite: bool = False  # delete an existing catalog at `out` instead of resuming it
    model: ModelSection = field(default_factory=ModelSection)
    sampler: SamplerSection = field(default_factory=SamplerSection)
    conditions: ConditionSection = field(default_factory=ConditionSection)
    noise: NoiseSection = field(default_factory=NoiseSection)
    runtime: RuntimeSection = field(default_factory=RuntimeSection)

    def __post_init__(self) -> None:
        from hpc.store import backend_for_path  # here: configs load without zarr/h5py

        if not self.out:
            raise ValueError("out is empty: give the catalog store's path (e.g. catalog.zarr)")
        if self.num_objects is not None and self.num_objects < 1:
            raise ValueError(f"num_objects must be >= 1 or null, got {self.num_objects}")
        if self.num_objects is None and self.conditions.resolved_selection == "sample":
            raise ValueError("num_objects: needed when conditions are sampled "
                             "(conditions.selection: sample)")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.shard_size < 1 or self.batch_size < 1:
            raise ValueError(f"shard_size and batch_size must be >= 1, got {self.shard_size} "
                             f"and {self.batch_size}")
        if self.size is not None and (self.size < 8 or self.size % 8):
            raise ValueError(f"size must be a multiple of 8 (the VAE downsamples 8x), got "
                             f"{self.size}")
        self.format = backend_for_path(self.out, self.format)

    @property
    def table_path(self) -> Path:
        """The FITS table beside the store: catalog.zarr -> catalog.fits."""
        if self.table:
            return Path(self.table)
        out = Path(self.out)
        return out.with_name(out.stem + ".fits")
