"""The jobs galaxy-hpc can run, by name: what `galaxy-hpc submit JOB` sends.

A job is a config kind plus an entry point taking that config. Entry points
are named as "module:function" strings and imported on use, so listing jobs or
checking a config does not import torch or diffusers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from galaxy_hpc.registry import MODELS  # also registers every config kind
from hpc.allocator import keep_freed_memory
from hpc.config import kind_class, kind_of, load_config
from hpc.imports import import_target
from hpc.launch import Resubmittable
from hpc.provenance import adopt_command, command_line, working_directory


@dataclass(frozen=True)
class JobSpec:
    name: str
    config_kinds: tuple[str, ...]  # the first is the default when no file is given
    entry: str  # "module:function", called with the config on every rank
    summary: str


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in [
        JobSpec("selftest", ("selftest",), "hpc.selftest:run_selftest",
                "all-reduce over every rank with torch.distributed and MPI"),
        JobSpec("synth", ("synth",), "galaxy_hpc.data.synth.job:run_synth",
                "draw synthetic galaxies with known truth into a store"),
        JobSpec("encode", ("encode",), "galaxy_hpc.encode.job:run_encode",
                "cache a store's SD VAE latents (8 exact rotations/flips) and caption embeddings"),
        JobSpec("train", tuple(MODELS), "galaxy_hpc.train.loop:train",
                "train a model family under DeepSpeed ZeRO (kind: train_sd, ...)"),
        JobSpec("ingest", ("ingest",), "galaxy_hpc.data.ingest.pipeline:run_ingest",
                "images (+ captions, votes, properties) of a seed project's format into a store"),
        JobSpec("generate", ("generate",), "galaxy_hpc.generate.job:run_generate",
                "a synthetic galaxy catalog (store + FITS table) from a trained model"),
        JobSpec("evaluate", ("evaluate",), "galaxy_hpc.evaluate.job:run_evaluate",
                "FID/KID/IS, physics, morphology and conditioning of a catalog, and a report"),
    ]
}


def job_spec(name: str) -> JobSpec:
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r}; jobs: {', '.join(JOBS)}")
    return JOBS[name]


def load_job_config(name: str, config_path: str | Path | None, overrides: list[str]) -> Any:
    """The job's config from a file (or its embedded defaults when no file is given)."""
    spec = job_spec(name)
    if config_path is None:
        cls = kind_class(spec.config_kinds[0])
        if overrides:
            from hpc.config import apply_overrides, from_dict

            return from_dict(cls, apply_overrides({}, overrides), source="overrides")
        return cls()
    if len(spec.config_kinds) == 1:
        return load_config(config_path, overrides, cls=kind_class(spec.config_kinds[0]))
    cfg = load_config(config_path, overrides)  # the file's kind picks the schema
    if kind_of(type(cfg)) not in spec.config_kinds:
        raise ValueError(f"{config_path}: a {name} job needs a config of kind "
                         f"{' or '.join(spec.config_kinds)}, not {kind_of(type(cfg))!r}")
    return cfg


def run_job(name: str, cfg: Any) -> Any:
    return import_target(job_spec(name).entry, f"job {name!r}")(cfg)


class JobCall(Resubmittable):
    """A job as submitit runs it on every task: the name, its resolved config, and the
    command that submitted it.

    The config is resolved (and validated) on the login node and travels
    pickled, so the job runs exactly what was checked at submission even if
    the YAML changes meanwhile. After preemption submitit resubmits this same
    call; jobs keep their progress on disk and resume from it. The command travels
    too: the job's own argv is submitit's, not what the user typed, and provenance
    must name the latter (hpc.provenance).
    """

    def __init__(self, name: str, cfg: Any, command: str | None = None) -> None:
        self.name = name
        self.cfg = cfg
        self.command = command or command_line()
        self.workdir = working_directory()

    def __call__(self) -> Any:
        keep_freed_memory()  # submitit starts this process, not the galaxy-hpc command
        # Calls pickled before the folder travelled with them lack it (resubmission).
        adopt_command(self.command, getattr(self, "workdir", None))
        return run_job(self.name, self.cfg)
