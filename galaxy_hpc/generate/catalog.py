"""A catalog as a function of its config: the store layout, what each object's row holds,
the provenance, and the images of any fixed batch of objects.

The job (job.py) and single-object regeneration (single.py) both make objects only
through `Catalog.make`, so an object regenerated alone is computed exactly as in the
catalog.

Per-object columns: id, index, seed (the object's torch seed), the condition (caption,
or the model's condition columns), source_row / source_id (which row of the condition
source, e.g. the real galaxy an img2img object started from), rare_class (when rare
classes are oversampled), and the provenance that lets rows of several catalogs be
stacked and still say where they came from: model_hash (16 hex digits over the model
files' sha256s, all listed in the attributes), sampler, num_steps, guidance_scale,
strength (1 for text-to-image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from galaxy_hpc.generate.seeds import object_seeds, shard_batches
from hpc.provenance import command_line, working_directory

FINGERPRINT_VERSION = 1
BASE_COLUMNS = {"id": "str", "index": "int64", "seed": "int64", "model_hash": "str",
                "sampler": "str", "num_steps": "int64", "guidance_scale": "float64",
                "strength": "float64"}


@dataclass
class Catalog:
    cfg: Any
    generator: Any
    source: Any  # conditions.ConditionSource
    runtime: Any
    model_hashes: dict[str, str] = field(default_factory=dict)  # filled in on rank 0, shared
    noise: Any = None  # noise.SurveyNoise: survey noise added to every image, or None

    @property
    def num_objects(self) -> int:
        return self.source.num_objects

    @property
    def model_hash(self) -> str:
        from galaxy_hpc.generate.hashing import short_hash

        return short_hash(self.model_hashes)

    def spec(self) -> Any:
        from galaxy_hpc.data.columns import GENERATED_ID, store_column_info
        from hpc.store import StoreSpec

        columns = dict(BASE_COLUMNS)
        noise_columns = {name: "float64" for name in self.noise.columns} if self.noise else {}
        for name, dtype in {**self.source.columns(), **noise_columns}.items():
            if name in columns:
                raise ValueError(f"condition column {name!r} clashes with the catalog's own "
                                 f"column of that name; rename it in {self.cfg.conditions.path}")
            columns[name] = dtype
        info = {**store_column_info(BASE_COLUMNS, overrides={"id": GENERATED_ID}),
                **self.source.column_info(),
                **{name: {"description": f"sigma of the Gaussian pixel noise added to band "
                                         f"{band} after the image was drawn, in the catalog's "
                                         "pixel units (generate's noise section)"}
                   for band, name in enumerate(noise_columns)}}
        return StoreSpec(image_shape=tuple(self.generator.image_shape),
                         image_dtype=self.generator.image_dtype, columns=columns,
                         shard_size=self.cfg.shard_size, backend=self.cfg.format,
                         column_info=info)

    # -- identity -----------------------------------------------------------------------
    def _sampler(self) -> dict[str, Any] | None:
        if not getattr(self.generator, "uses_sampler", True):
            return None
        sampler = self.cfg.sampler
        return {"name": sampler.name, "steps": sampler.steps,
                "guidance_scale": sampler.guidance_scale, "eta": sampler.eta}

    def fingerprint(self) -> dict[str, Any]:
        """Everything that decides the catalog's content; a resumed run must match it."""
        identity = self.generator.identity()
        model = {k: v for k, v in identity.items() if k != "files"}
        model["sha256"] = dict(self.model_hashes)
        # Only when on: catalogs made before the noise section still resume.
        noise = {"noise": self.noise.fingerprint()} if self.noise else {}
        return {**noise, "version": FINGERPRINT_VERSION, "model": model,
                "sampler": self._sampler(),
                "image_shape": list(self.generator.image_shape),
                "image_dtype": self.generator.image_dtype, "seed": self.cfg.seed,
                "num_objects": self.num_objects, "shard_size": self.cfg.shard_size,
                "batch_size": self.cfg.batch_size, "precision": self.runtime.precision,
                # Where the files lie is not what they are: moved files still resume.
                "conditions": {k: v for k, v in self.source.provenance().items()
                               if k != "path"}}

    def attrs(self, command: str | None) -> dict[str, Any]:
        import galaxy_hpc

        sampler_provenance = getattr(self.generator, "sampler_provenance", lambda: None)()
        return {"source": "galaxy-hpc generate", "command": command or command_line(),
                "working_directory": working_directory(),
                "galaxy_hpc_version": galaxy_hpc.__version__,
                "generate": {"fingerprint": self.fingerprint(),
                             "model_files": self.generator.identity().get("files", {}),
                             "conditions": self.source.provenance(),
                             "scheduler": sampler_provenance,
                             "noise": self.noise.source if self.noise else None,
                             "runtime": self.runtime.describe()}}

    # -- objects ------------------------------------------------------------------------
    def make(self, indices: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Images and columns of one fixed batch (seeds.shard_batches / seeds.batch_of)."""
        indices = np.asarray(indices, dtype=np.int64)
        batch = self.source.batch(indices)
        seeds = object_seeds(self.cfg.seed, indices)
        images = self.generator.generate(batch, seeds)
        expected = (len(indices), *self.generator.image_shape)
        if tuple(images.shape) != expected:
            raise ValueError(f"{self.cfg.model.kind} generator returned images of shape "
                             f"{tuple(images.shape)}, expected {expected}")
        count = len(indices)
        sampler = self._sampler()
        columns: dict[str, Any] = {
            "id": np.array([f"gen-{self.cfg.seed}-{i}" for i in indices.tolist()], dtype=object),
            "index": indices, "seed": seeds,
            "model_hash": np.array([self.model_hash] * count, dtype=object),
            "sampler": np.array([sampler["name"] if sampler else "none"] * count, dtype=object),
            "num_steps": np.full(count, sampler["steps"] if sampler else 0, dtype=np.int64),
            "guidance_scale": np.full(count, sampler["guidance_scale"] if sampler else np.nan),
            "strength": np.full(count, batch.strength if batch.init_images is not None else 1.0),
        }
        columns.update(batch.columns)
        if self.noise is not None:
            images, added = self.noise.apply(images, indices, self.cfg.seed)
            columns.update(added)
        return images, columns

    def make_shard(self, start: int, stop: int, on_batch: Any = None
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        parts = []
        for indices in shard_batches(start, stop, self.cfg.batch_size):
            parts.append(self.make(indices))
            if on_batch is not None:
                on_batch(len(indices))
        images = np.concatenate([p[0] for p in parts])
        columns = {name: np.concatenate([p[1][name] for p in parts]) for name in parts[0][1]}
        return images, columns


def fingerprint_differences(stored: Any, wanted: Any) -> list[str]:
    """`key: stored != wanted` lines between two fingerprints (hpc.outputs.differences)."""
    from hpc.outputs import differences

    return differences(stored, wanted)
