"""The generator a catalog job drives, loaded by what galaxy_hpc/registry.py names for
`model.kind`. The job never knows which model family it drives."""

from __future__ import annotations

from typing import Any

from galaxy_hpc.models.contract import Generator
from galaxy_hpc.registry import generator_spec
from hpc.imports import import_target

REQUIRED = ("condition_kind", "image_shape", "image_dtype", "generate", "identity")


def load_generator(model: Any, sampler: Any, runtime: Any, *, size: int | None) -> Generator:
    """The generator for `model.kind`, loaded onto `runtime.device`."""
    spec = generator_spec(model.kind)
    loader = import_target(spec.loader, f"generator {model.kind!r}")
    generator = loader(model, sampler, runtime, size=size)
    missing = [name for name in REQUIRED if not hasattr(generator, name)]
    if missing:
        raise TypeError(f"{spec.loader} returned {type(generator).__name__} without "
                        f"{', '.join(missing)} (see galaxy_hpc.models.contract.Generator)")
    return generator
