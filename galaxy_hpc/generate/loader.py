"""The generator a catalog job drives, loaded by what galaxy_hpc/registry.py names for
`model.kind`. The job never knows which model family it drives.

A model folder that is there but damaged (a config cut short, a weights file truncated
by a full disk, a component missing) makes diffusers raise OSError, which the CLI would
print as a traceback; here it becomes one line naming model.path and the damaged file:
diffusers' own reason names a bad config or a missing component, and for weights cut
short (safetensors says only "incomplete metadata") every .safetensors file under the
model and its base is checked against its own header. A folder that is not there at all
stays FileNotFoundError."""

from __future__ import annotations

from typing import Any

from galaxy_hpc.models.contract import Generator
from galaxy_hpc.registry import generator_spec
from hpc.files import loading_from
from hpc.imports import import_target


REQUIRED = ("condition_kind", "image_shape", "image_dtype", "generate", "identity")


def load_generator(model: Any, sampler: Any, runtime: Any, *, size: int | None) -> Generator:
    """The generator for `model.kind`, loaded onto `runtime.device`."""
    spec = generator_spec(model.kind)
    loader = import_target(spec.loader, f"generator {model.kind!r}")
    with loading_from(f"model.path {model.path}: the {model.kind} model cannot be loaded",
                      model.path, getattr(model, "base", None)):
        generator = loader(model, sampler, runtime, size=size)
    missing = [name for name in REQUIRED if not hasattr(generator, name)]
    if missing:
        raise TypeError(f"{spec.loader} returned {type(generator).__name__} without "
                        f"{', '.join(missing)} (see galaxy_hpc.models.contract.Generator)")
    return generator
