"""The latent-diffusion generator: rows of numbers (GZ2 vote fractions, redshift and log
stellar mass, ...) to galaxies in the training store's own units.

GalaxyLDMPipeline keeps the stretch of the store it was trained on, so its images go back
through that stretch: a uint8 store's model gives uint8 RGB, a flux store's gives float32
flux per band. Object k's latents and sampler noise come from its own torch.Generator
(a list of generators, one per object, as for Stable Diffusion).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.models.contract import ConditionBatch
from galaxy_hpc.models.samplers import build_scheduler, scheduler_provenance
from hpc.hub import resolve_weights


class LDMGenerator:
    condition_kind = "vector"
    uses_sampler = True
    supports_init_images = False

    def __init__(self, pipe: Any, sampler: Any, runtime: Any, *, size: int | None,
                 folder: Path) -> None:
        self.pipe = pipe.to(runtime.device)
        self.sampler = sampler
        self.pipe.scheduler = build_scheduler(sampler, pipe.scheduler.config)
        names = pipe.condition_names
        self.condition_names = list(names) if names else None
        self.num_conditions = int(pipe.condition_encoder.config.num_conditions)
        vae, unet = pipe.vae.config, pipe.unet.config
        factor = 2 ** (len(vae.block_out_channels) - 1)
        side = unet.sample_size if isinstance(unet.sample_size, int) else unet.sample_size[0]
        native = int(side * factor)
        if size is not None and size != native:
            raise ValueError(f"size {size}: this latent diffusion model makes {native}x{native} "
                             "images only (its UNet has a fixed latent size); set size: null")
        stretch = pipe.stretch
        self.stretch_kind = stretch.to_dict()["kind"] if stretch is not None else None
        self.image_dtype = "uint8" if self.stretch_kind in (None, "uint8") else "float32"
        self.image_shape = (int(vae.out_channels), native, native)
        self.identity_ = {"kind": "ldm", "class": "GalaxyLDMPipeline",
                          "files": {"pipeline": str(folder.resolve())},
                          "stretch": stretch.to_dict() if stretch is not None else None}
        if runtime.compile:
            self.pipe.unet.compile()

    def identity(self) -> dict[str, Any]:
        return dict(self.identity_)

    def sampler_provenance(self) -> dict[str, Any]:
        return scheduler_provenance(self.pipe.scheduler)

    @torch.inference_mode()
    def generate(self, batch: ConditionBatch, seeds: np.ndarray) -> np.ndarray:
        if batch.vectors is None:
            raise ValueError("a latent diffusion catalog needs numeric conditions "
                             "(conditions.columns)")
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        out = self.pipe(conditions=np.asarray(batch.vectors, dtype=np.float32),
                        num_inference_steps=self.sampler.steps,
                        guidance_scale=self.sampler.guidance_scale, eta=self.sampler.eta,
                        generator=generators)
        values = out.store_values if out.store_values is not None else \
            (np.asarray(out.stretched, dtype=np.float32) + 1.0) * 127.5
        values = np.asarray(values, dtype=np.float32)
        bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
        if bad.any():
            raise ValueError(f"objects {np.asarray(batch.indices)[bad][:5].tolist()} came out "
                             "with NaN pixels: use runtime.precision bf16 or fp32")
        if self.image_dtype == "uint8":
            return np.clip(values, 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(values)


def load_ldm(model: Any, sampler: Any, runtime: Any, *, size: int | None) -> LDMGenerator:
    from galaxy_hpc.models.sd.generation import quiet_loading
    from galaxy_hpc.models.ldm.pipeline import GalaxyLDMPipeline

    folder = Path(resolve_weights(model.path, field="model.path")) if model.path else None
    if folder is None:
        raise ValueError("model.path is empty: give a GalaxyLDMPipeline folder (the "
                         "pipeline/ of a train_ldm_unet run)")
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"model.path: {folder} is not a pipeline folder (no "
                                "model_index.json); a train_ldm_unet run writes OUTPUT/pipeline")
    quiet_loading()
    pipe = GalaxyLDMPipeline.from_pretrained(folder, dtype=runtime.dtype)
    pipe.set_progress_bar_config(disable=True)
    return LDMGenerator(pipe, sampler, runtime, size=size, folder=folder)
