"""The samplers, as diffusers schedulers built from the model's own scheduler config.

Starting from the model's config keeps what the model was trained with (beta schedule,
prediction type, timestep offset and spacing, a zero terminal SNR); only the solver
changes. The scheduler's resolved config goes into the catalog's provenance, so
"dpm_solver++" is never ambiguous later.

Deterministic solvers (ddim at eta 0, dpm_solver++) follow the model's probability-flow
ODE, which carries the model's errors to the end; the stochastic ones (euler_ancestral,
dpm_solver++_sde, ddim at eta 1) add fresh noise each step, which corrects part of them.
How much that matters depends on the model: the 32 px flux LDM trained on scaled_linear's
schedule (whose last step leaks 7% of the image) drew galaxies ~0.9 px too large with
dpm_solver++ and ~0.2 px with the stochastic solvers; trained on a zero terminal SNR
(model.zero_terminal_snr, the default) both draw them within 0.03 px (docs/train.md,
"Conditioned on redshift and stellar mass").
"""

from __future__ import annotations

from typing import Any

# What `sampler.name` may be (generate, serve, sample): the solvers build_scheduler knows.
SAMPLERS = ("ddim", "dpm_solver++", "dpm_solver++_sde", "euler_ancestral")


def build_scheduler(sampler: Any, model_scheduler_config: Any) -> Any:
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
    )

    config = dict(model_scheduler_config)
    if sampler.name == "ddim":
        return DDIMScheduler.from_config(config)
    if sampler.name == "dpm_solver++":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++",
                                                       solver_order=2)
    if sampler.name == "dpm_solver++_sde":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="sde-dpmsolver++",
                                                       solver_order=2)
    if sampler.name == "euler_ancestral":
        return EulerAncestralDiscreteScheduler.from_config(config)
    raise ValueError(f"sampler.name {sampler.name!r}: use one of {', '.join(SAMPLERS)}")


def scheduler_provenance(scheduler: Any) -> dict[str, Any]:
    """Class and resolved config of a scheduler, as plain JSON."""
    config = {key: value for key, value in dict(scheduler.config).items()
              if not key.startswith("_")}
    return {"class": type(scheduler).__name__, "config": _jsonable(config)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    return str(value)
