"""What a model family gives the jobs that drive it: the training and generation contracts.

The contracts live here, beside the models and below every job, so that a model never
imports the trainer or the catalog job (tests/test_layering.py forbids it): the jobs
come to the models through galaxy_hpc/registry.py, never the other way round.

Training. The loop (galaxy_hpc/train/loop.py) owns everything distributed: the DeepSpeed
engine, data sharding, checkpoints, EMA, logging, preemption. It builds the data side
first and hands the family what it found there (`DataFacts`): the store, the stretch its
dataset applies, the columns and image shape. A family owns its model: it builds the
trainable module (whose forward takes a batch and returns the loss), prepares batches
with its frozen parts (a VAE, a text encoder), draws sample images, writes the final
artifact in its ecosystem's format, and may judge that artifact once training is over.
A family never sees a rank count or a process group.

Generation. A catalog job (galaxy_hpc/generate/job.py) drives any `Generator`: an object
with the attributes and method of the protocol below, nothing to inherit.

Nothing here imports torch: the registry and `galaxy-hpc config` read this module on a
login node.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch


# ---------------------------------------------------------------------------- training


@dataclass(frozen=True)
class DataFacts:
    """What the loop's dataset found in the training store, handed to the family before it
    builds anything: one computation of each fact (the stretch above all), so the model
    never re-derives one that could disagree with the images it is fed."""

    store: Any  # the opened hpc.store.Store the dataset reads
    stretch: Any  # galaxy_hpc.data.stretch.Stretch the dataset applies to pixels
    caption_column: str | None
    condition_columns: tuple[str, ...]
    # galaxy_hpc.data.split.Split: the store indices trained on and held out (never in a
    # training batch); None when data.validation_fraction is 0.
    split: Any = None
    # How the job computes a fact once for all its ranks (see `once`); None: here.
    shared: Callable[[Callable[[], Any]], Any] | None = None

    @classmethod
    def of(cls, dataset: Any, section: Any, split: Any = None,
           shared: Callable[[Callable[[], Any]], Any] | None = None) -> "DataFacts":
        """The facts of a galaxy_hpc.data.dataset.StoreDataset built from `section` (a
        galaxy_hpc.data.section.DataSection) over the training items of `split`, with the
        job's way of computing a fact once (`once`)."""
        return cls(store=dataset.store, stretch=dataset.stretch,
                   caption_column=section.caption_column,
                   condition_columns=tuple(section.condition_columns), split=split,
                   shared=shared)

    def once(self, work: Callable[[], Any]) -> Any:
        """work() computed once for the whole job and its result handed to every rank (the
        loop runs it on rank 0 and broadcasts it; its ValueError stops every rank): a
        statistic of the store that every rank needs and that reads images, such as the
        survey's pixel noise, is read once, not by each of hundreds of ranks."""
        return work() if self.shared is None else self.shared(work)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.store.spec.image_shape)  # type: ignore[return-value]

    @property
    def image_dtype(self) -> str:
        return str(self.store.spec.image_dtype)

    @property
    def flux(self) -> bool:
        """Float32 flux (FITS-like), not uint8 RGB."""
        return self.image_dtype != "uint8"

    @property
    def num_items(self) -> int:
        return len(self.store)


def item_seed(seed: int, index: int, draw: int = 0) -> int:
    """The RNG seed of one held-out item's `draw`-th random draw under the run's seed. A
    whole-set validation that draws its randomness per item with it scores the same
    items the same however they fall into batches and ranks (the batch seed depends on
    which item a batch starts with)."""
    digest = hashlib.sha256(f"{seed}:validation-item:{index}:{draw}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class ModelFamily(ABC):
    """One model family. `cfg` is its training config (run, data, optim, zero, ema and its
    own `model` section); `data` what the dataset found in the store."""

    def __init__(self, cfg: Any, *, data: DataFacts, device: "torch.device",
                 dtype: "torch.dtype") -> None:
        self.cfg = cfg
        self.data = data
        self.device = device
        self.dtype = dtype  # the precision the engine trains in
        # Set by the loop before build() under ZeRO-3: `partition.context()` creates
        # modules already partitioned over the ranks and `partition.load(module, folder)`
        # fills one from a saved folder, each rank reading only its slice. A family that
        # loads large pretrained parts builds its trained ones that way, so that no rank
        # ever holds them whole; None: build whole, as usual.
        self.partition: Any = None

    @property
    def store(self) -> Any:
        return self.data.store

    @property
    def stretch(self) -> Any:
        return self.data.stretch

    @abstractmethod
    def build(self) -> "torch.nn.Module":
        """The module DeepSpeed wraps: forward(batch) -> scalar loss, or (loss, {name:
        detached scalar}) to have the loop log the loss's terms too. Frozen parts stay
        outside it, on `device`, built here too."""

    def parameter_groups(self, module: "torch.nn.Module") -> list[dict[str, Any]]:
        """The optimizer's parameter groups: one of every trainable parameter by default. A
        family with parts that need their own learning rate (a GAN's two networks, a head
        and a backbone) returns several; a group's "lr" overrides optim.lr for it (the
        schedule scales every group alike)."""
        return [{"params": [p for p in module.parameters() if p.requires_grad]}]

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move the batch to the device and run frozen encoders (no gradients)."""
        import torch

        return {key: value.to(self.device) if isinstance(value, torch.Tensor) else value
                for key, value in batch.items()}

    def images_in(self, batch: dict[str, Any]) -> int:
        return len(batch["index"])

    def validation_loss(self, module: "torch.nn.Module", batch: dict[str, Any]
                        ) -> tuple["torch.Tensor", dict[str, "torch.Tensor"]]:
        """(loss, {term: value}) of one held-out batch, already through `prepare_batch`.
        The loop calls it on every rank, in eval mode, without gradients, with the global
        RNG seeded from the batch's position in the held-out set (not the step), so that
        successive validations draw the same noise and timesteps and compare. Default: the
        training forward's loss and terms. A family whose training loss is no measure of
        quality on its own overrides it."""
        output = module(batch)
        if isinstance(output, tuple):
            loss, terms = output
            return loss, dict(terms)
        return output, {}

    # A statistic over the whole held-out set that is no mean of per-batch figures (a
    # distance between two distributions, per cell of the condition space) cannot be
    # read off batches: a family that sets this measures each held-out item with
    # `validation_measure`, the loop gathers every rank's items in store order, and
    # `validation_score` turns them into the loss, on every rank alike.
    whole_set_validation: bool = False

    def validation_measure(self, module: "torch.nn.Module", batch: dict[str, Any]
                           ) -> dict[str, "np.ndarray"]:
        """{name: array with the batch's items on axis 0} for one held-out batch (through
        `prepare_batch`, seeded as for `validation_loss`); only when
        `whole_set_validation`. Randomness drawn per item with `item_seed` (not from the
        batch's seed) keeps the score independent of how the items fell into batches."""
        raise NotImplementedError(f"{type(self).__name__} measures no whole-set validation")

    def validation_score(self, measured: dict[str, "np.ndarray"]
                         ) -> tuple[float, dict[str, float]]:
        """(loss, {term: value}) of the whole held-out set from every item's measurements
        (the arrays of `validation_measure`, concatenated over batches and ranks in store
        order). Must give the same on every rank: it runs on each."""
        raise NotImplementedError(f"{type(self).__name__} measures no whole-set validation")

    @abstractmethod
    def sample(self, module: "torch.nn.Module", num_images: int, seed: int) -> "np.ndarray":
        """Images (N, 3, H, W) uint8 from the current weights, for sample grids. Called on
        rank 0 alone under ZeRO stages 0-2; under ZeRO-3 on every rank (each forward pass
        gathers the partitioned parameters, a collective), with the same seed, and only
        rank 0's images are written. So it must not write files or print itself."""

    def sample_recipe(self, num_images: int, seed: int) -> dict[str, Any] | None:
        """How `sample` drew its images, in the ecosystem's own terms (prompts, sampler,
        steps, seed), so that anyone can redraw a run's grid from its export with that
        ecosystem's tools alone; written beside each grid as JSON. None: not stated."""
        return None

    def export_scope(self) -> str:
        """What `export` needs of the trained module's state: "all" of it, or only the
        "trainable" parameters (a LoRA over a base the user already has), which spares
        gathering a whole frozen base onto rank 0."""
        return "all"

    @abstractmethod
    def export(self, state_dict: dict[str, "torch.Tensor"], output_dir: Path) -> Path:
        """Write the trained model in its ecosystem's format from a consolidated state
        dict of the trainable module, on rank 0 while the other ranks wait: write files
        and nothing more (judging the model is `evaluate_export`). Returns what was
        written."""

    def evaluate_export(self, artifact: Path, output_dir: Path) -> dict[str, Any] | None:
        """Judge the exported artifact, opened as its users open it (held-out metrics, a
        consistency report). Called once training is over, on rank 0 alone, after the
        process group is gone: no rank waits on it under a collective timeout. Returns a
        summary for the run's result (None: nothing to judge)."""
        return None

    def describe(self) -> str:
        return type(self).__name__


# ---------------------------------------------------------------------------- generation


@dataclass
class ConditionBatch:
    """The conditions of one fixed batch of objects (galaxy_hpc.generate.seeds)."""

    indices: "np.ndarray"  # (B,) object indices
    captions: list[str] | None = None  # text generators
    # Index of each caption in `vocabulary`, the catalog-wide list of distinct captions in a
    # fixed order: lets a generator encode captions in fixed groups and cache them.
    caption_ids: "np.ndarray | None" = None
    vocabulary: Sequence[str] | None = None
    negative_prompt: str = ""
    vectors: "np.ndarray | None" = None  # (B, K) float64, vector generators
    init_images: "np.ndarray | None" = None  # (B, C, H, W) store images (img2img)
    strength: float = 1.0  # img2img: how far the init images are noised (1: pure noise)
    # Per-object columns the catalog records about the condition (source row, id, ...).
    columns: dict[str, "np.ndarray"] = field(default_factory=dict)


@runtime_checkable
class Generator(Protocol):
    """What a catalog job needs of a model, loaded by the loader its spec names

        load(model: ModelSection, sampler: SamplerSection, runtime: Runtime, *,
             size: int | None) -> Generator
    """

    condition_kind: Literal["text", "vector"]
    condition_names: list[str] | None  # vector generators: the columns, in model order
    image_shape: tuple[int, int, int]  # (C, H, W) of what generate returns
    image_dtype: str  # "uint8" (RGB) or "float32" (the training store's units, e.g. flux)
    uses_sampler: bool  # False: sampler, steps and guidance are ignored (recorded as such)
    supports_init_images: bool  # img2img

    def identity(self) -> dict[str, Any]:
        """Kind, class and files of the model: {"kind", "class", "files": {role: path}};
        the job hashes the files for the catalog's provenance."""

    def sampler_provenance(self) -> dict[str, Any] | None:
        """The scheduler actually used (class and resolved config), None without one."""

    def generate(self, batch: ConditionBatch, seeds: "np.ndarray") -> "np.ndarray":
        """(B, C, H, W) images of `image_dtype` for one batch; object k's randomness comes
        only from torch.Generator().manual_seed(seeds[k])."""
