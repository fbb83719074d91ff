"""A few galaxies from a trained model on request: what `galaxy-hpc sample` and the
server's /infer draw, through the same generators a catalog job loads.

A request is a prompt (text models) or a row of conditions (vector models), a count n,
a seed, and the sampler's steps and guidance, a size and an img2img start where the
family takes them. Image k of a request with seed S is object `start + k` of a catalog
with seed S: its torch seed is `object_seed(S, start + k)` (galaxy_hpc.generate.seeds),
so a request made of the catalog's own rows, drawn in one batch as the catalog drew its
batch, gives the catalog's bytes. Requests merged into one batch by the server's queue
give the same galaxies up to the last bits of a batched kernel (see seeds.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from galaxy_hpc.generate.config import ModelSection, RuntimeSection, SamplerSection
from galaxy_hpc.generate.seeds import object_seeds


@dataclass
class DrawRequest:
    """One request: n images of one condition."""

    n: int = 1
    seed: int = 0
    start: int = 0  # first object index: image k is catalog object start + k
    prompt: str | None = None
    negative_prompt: str = ""
    conditions: dict[str, float] | None = None
    steps: int | None = None  # null: the model's sampler section
    guidance_scale: float | None = None
    size: int | None = None  # null: the model's own
    init_image: np.ndarray | None = None  # (C, H, W) store image to start from (img2img)
    strength: float = 0.6
    # Drawn in a call of its own, never merged with other requests: the catalog's bytes
    # (a catalog batch of these rows), not just its galaxies.
    alone: bool = False

    def batch_key(self) -> tuple[Any, ...]:
        """Requests with equal keys run in one generator call."""
        init = None if self.init_image is None else \
            (self.strength, self.init_image.shape, self.init_image.dtype.str)
        return (self.steps, self.guidance_scale, self.size, self.negative_prompt, init,
                id(self) if self.alone else None)


@dataclass
class Drawn:
    images: np.ndarray  # (n, C, H, W) of the generator's image_dtype
    display: np.ndarray  # (n, 3, H, W) uint8, for PNGs
    seeds: np.ndarray


@dataclass
class OnDemandModel:
    """A loaded generator and what it needs to draw requests; one call at a time."""

    model: ModelSection
    sampler: SamplerSection
    generator: Any
    stretch: Any = None  # galaxy_hpc.data.stretch for float outputs, None for RGB
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def condition_kind(self) -> str:
        return self.generator.condition_kind

    @property
    def condition_names(self) -> list[str] | None:
        return self.generator.condition_names

    @property
    def native_size(self) -> int:
        return int(self.generator.image_shape[-1])

    def describe(self) -> dict[str, Any]:
        gen = self.generator
        return {"kind": self.kind, "condition_kind": gen.condition_kind,
                "condition_names": gen.condition_names, "image_shape": list(gen.image_shape),
                "image_dtype": gen.image_dtype, "uses_sampler": gen.uses_sampler,
                "supports_init_images": gen.supports_init_images,
                "resizable": hasattr(gen, "size"),
                "sampler": {"name": self.sampler.name, "steps": self.sampler.steps,
                            "guidance_scale": self.sampler.guidance_scale}}

    # -- checking ---------------------------------------------------------------------
    def check(self, request: DrawRequest) -> None:
        """ValueError naming the field when this model cannot draw the request."""
        gen = self.generator
        if request.n < 1:
            raise ValueError(f"n must be >= 1, got {request.n}")
        if request.seed < 0 or request.start < 0:
            raise ValueError("seed and start must be >= 0")
        if gen.condition_kind == "text":
            if not request.prompt:
                raise ValueError(f"prompt: a {self.kind} model draws from a caption")
            if request.conditions:
                raise ValueError(f"conditions: a {self.kind} model takes a prompt, not numbers")
        else:
            names = list(gen.condition_names or [])
            given = dict(request.conditions or {})
            if request.prompt:
                raise ValueError(f"prompt: a {self.kind} model takes conditions "
                                 f"({', '.join(names)}), not text")
            missing = [n for n in names if n not in given]
            extra = [n for n in given if n not in names]
            if missing or extra:
                raise ValueError(f"conditions: this model needs exactly {', '.join(names)} "
                                 f"(missing: {', '.join(missing) or '-'}; unknown: "
                                 f"{', '.join(extra) or '-'})")
        if request.size is not None and request.size != self.native_size:
            if not hasattr(gen, "size"):
                raise ValueError(f"size: this {self.kind} model makes {self.native_size} px "
                                 "images only")
            if request.size < 8 or request.size % 8:
                raise ValueError(f"size must be a multiple of 8, got {request.size}")
        if request.init_image is not None:
            if not gen.supports_init_images:
                raise ValueError(f"init image: a {self.kind} model has no img2img")
            if not 0 < request.strength <= 1:
                raise ValueError(f"strength must be in (0, 1], got {request.strength}")
            init = request.init_image
            if gen.image_dtype == "uint8" and (init.dtype != np.uint8 or init.ndim != 3
                                               or init.shape[0] != 3):
                raise ValueError(f"init image: a {self.kind} model starts from RGB (uint8, 3 "
                                 f"bands) images, not {init.dtype} {tuple(init.shape)}")

    # -- drawing ----------------------------------------------------------------------
    def draw(self, requests: list[DrawRequest]) -> list[Drawn]:
        """Every request of one batch key in one generator call; results in order."""
        if not requests:
            return []
        key = requests[0].batch_key()
        if any(r.batch_key() != key for r in requests):
            raise ValueError("draw: requests of one call must share steps, guidance, size, "
                             "negative prompt and strength")
        for request in requests:
            self.check(request)
        from galaxy_hpc.models.contract import ConditionBatch

        first = requests[0]
        counts = [r.n for r in requests]
        seeds = np.concatenate([object_seeds(r.seed, np.arange(r.start, r.start + r.n))
                                for r in requests])
        batch = ConditionBatch(indices=np.arange(sum(counts), dtype=np.int64),
                               negative_prompt=first.negative_prompt)
        if self.condition_kind == "text":
            prompts = [r.prompt for r in requests for _ in range(r.n)]
            vocabulary = list(dict.fromkeys(prompts))
            batch.vocabulary = vocabulary
            batch.captions = prompts
            batch.caption_ids = np.array([vocabulary.index(p) for p in prompts], dtype=np.int64)
        else:
            names = list(self.condition_names or [])
            batch.vectors = np.array([[float(r.conditions[n]) for n in names]
                                      for r in requests for _ in range(r.n)], dtype=np.float64)
        if first.init_image is not None:
            batch.init_images = np.stack([r.init_image for r in requests for _ in range(r.n)])
            batch.strength = first.strength
        with self.lock:
            images = self._generate(batch, seeds, first)
        out, at = [], 0
        for request in requests:
            part = images[at:at + request.n]
            out.append(Drawn(images=part, display=self.display(part),
                             seeds=seeds[at:at + request.n]))
            at += request.n
        return out

    def _generate(self, batch: Any, seeds: np.ndarray, first: DrawRequest) -> np.ndarray:
        gen = self.generator
        sampler = replace(self.sampler,
                          steps=first.steps if first.steps is not None else self.sampler.steps,
                          guidance_scale=first.guidance_scale if first.guidance_scale
                          is not None else self.sampler.guidance_scale)
        size = first.size or self.native_size
        saved = (getattr(gen, "sampler", None), getattr(gen, "size", None), gen.image_shape)
        if hasattr(gen, "sampler"):
            gen.sampler = sampler  # generators read steps and guidance at each call
        if hasattr(gen, "size") and size != gen.size:
            gen.size, gen.image_shape = size, (gen.image_shape[0], size, size)
        forget = getattr(gen, "forget_captions", None)
        if forget is not None:
            forget()  # this call's vocabulary is not the last one's
        try:
            return gen.generate(batch, seeds)
        finally:
            if hasattr(gen, "sampler"):
                gen.sampler = saved[0]
            if hasattr(gen, "size"):
                gen.size, gen.image_shape = saved[1], saved[2]

    def display(self, images: np.ndarray) -> np.ndarray:
        """(n, 3, H, W) uint8 for a PNG: RGB as is, flux through the model's stretch."""
        from galaxy_hpc.models.display import to_rgb

        return to_rgb(images, self.stretch)


def load_ondemand(model: ModelSection, sampler: SamplerSection | None = None,
                  runtime: RuntimeSection | None = None, *, size: int | None = None
                  ) -> OnDemandModel:
    """Load `model` as a catalog job would (galaxy_hpc.generate.loader)."""
    from galaxy_hpc.data.stretch import stretch_from_dict
    from galaxy_hpc.generate.loader import load_generator
    from galaxy_hpc.generate.runtime import resolve_runtime

    sampler = sampler or SamplerSection()
    resolved = resolve_runtime(runtime or RuntimeSection(), 0)
    generator = load_generator(model, sampler, resolved, size=size)
    stretch = generator.identity().get("stretch")
    stretch = stretch_from_dict(stretch) if stretch and generator.image_dtype != "uint8" \
        else None
    return OnDemandModel(model=model, sampler=sampler, generator=generator, stretch=stretch)


def model_section_for(path: str, *, base: str | None = None, kind: str | None = None
                      ) -> ModelSection:
    """The model section of a folder the toolkit exported, its kind read off its files:
    a LoRA (over `base`), an SD or LDM pipeline folder, a GAN generator folder."""
    from pathlib import Path

    from hpc.files import read_json

    folder = Path(path)
    if not folder.exists():
        raise FileNotFoundError(f"model {path}: no such file or folder")
    if kind is None:
        index = folder / "model_index.json"
        lora = folder.suffix == ".safetensors" or \
            (folder / "pytorch_lora_weights.safetensors").is_file()
        if lora:
            kind = "sd_lora"
        elif (folder / "generator.json").is_file():
            kind = "gan"
        elif index.is_file():
            name = read_json(index, "the pipeline's index").get("_class_name", "")
            kind = "ldm" if "LDM" in name else "sd"
        else:
            raise ValueError(f"model {path}: not a folder the toolkit exports (no "
                             "model_index.json, LoRA weights or generator.json); give --kind")
    if kind == "sd_lora":  # without base: the one the LoRA records (ModelSection)
        return ModelSection(kind=kind, path=str(folder), base=base)
    return ModelSection(kind=kind, path=str(folder))
