"""The `evaluate` job: every evaluation of one catalog and the report, from one config.

What `galaxy-hpc evaluate all CONFIG`, `galaxy-hpc submit evaluate CONFIG` and
`sbatch slurm/eval_fid.sbatch all CONFIG` run. The stores are given once at the top and
fill each section's stores left empty; each section is the typed config of its
evaluation (config.py). Morphology runs when `morphology.predictor` is set (and scores the
predictor on the real store's true votes too when it has them); morphology fidelity runs
with the same predictor (or its own) when the real store has true votes to give the
predictor's floor; conditioning reports the real store's correlations beside the
generated ones. CLIP score runs when `clipscore.weights` (a CLIP folder) is set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from galaxy_hpc.evaluate.config import (
    ClipScoreConfig,
    ConditioningConfig,
    FidConfig,
    MorphologyConfig,
    MorphologyFidelityConfig,
    PhysicsConfig,
)

EVALUATIONS = ("fid", "physics", "morphology", "morphology_fidelity", "conditioning",
               "clipscore")


@dataclass
class EvaluateJobConfig:
    """Run the evaluations a config lists, then write the report.

    FID, physics, morphology and morphology fidelity (when a predictor is given),
    conditioning and CLIP score (when a CLIP folder is given) of one catalog,
    each from its section, writing OUT/<evaluation>.json and OUT/report/index.html. The
    same job `galaxy-hpc submit evaluate` sends.
    """

    real: str = ""  # the real store; fills each section's real store left empty
    generated: str = ""  # the generated store; fills each section's generated store
    out: str = "evaluation"  # RUN_DIR: <evaluation>.json and report/index.html
    # Any of fid, physics, morphology, morphology_fidelity, conditioning, clipscore, run in
    # this order.
    evaluations: list[str] = field(default_factory=lambda: [
        "fid", "physics", "morphology", "morphology_fidelity", "conditioning", "clipscore"])
    report: bool = True  # write OUT/report/index.html
    fid: FidConfig = field(default_factory=FidConfig)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    morphology: MorphologyConfig = field(default_factory=MorphologyConfig)
    # Its predictor left empty: morphology.predictor.
    morphology_fidelity: MorphologyFidelityConfig = field(
        default_factory=MorphologyFidelityConfig)
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)
    clipscore: ClipScoreConfig = field(default_factory=ClipScoreConfig)

    def __post_init__(self) -> None:
        unknown = [e for e in self.evaluations if e not in EVALUATIONS]
        if unknown:
            raise ValueError(f"evaluations: unknown {unknown}; choose from {', '.join(EVALUATIONS)}")


@dataclass
class EvaluateSummary:
    out: str
    ran: list[str]
    skipped: dict[str, str]
    summaries: dict[str, str]
    report: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        lines = [text for text in self.summaries.values()]
        lines += [f"skipped {name}: {why}" for name, why in self.skipped.items()]
        if self.report:
            lines.append(f"report: {self.report}")
        return "\n\n".join(lines)


def _filled(name: str, section: Any, cfg: EvaluateJobConfig) -> Any:
    """The section with the job's stores where it names none (and morphology fidelity with
    morphology's predictor). Morphology scores the predictor on the real store too only
    when that store has the vote columns."""
    fields = {f.name for f in dataclasses.fields(section)}
    given = {store: getattr(cfg, store) for store in ("real", "generated")
             if store in fields and not getattr(section, store) and getattr(cfg, store)}
    if name == "morphology_fidelity" and not section.predictor:
        given["predictor"] = cfg.morphology.predictor
    if name == "morphology" and "real" in given:
        from galaxy_hpc.evaluate.morphology import vote_columns
        from hpc.store import open_store

        try:
            vote_columns(open_store(given["real"]), section.vote_suffix)
        except ValueError:
            del given["real"]
    return dataclasses.replace(section, **given)


def _skip(name: str, section: Any) -> str | None:
    """Why an evaluation the job lists cannot run on what it was given (None: it can)."""
    if name in ("morphology", "morphology_fidelity") and not section.predictor:
        return "no morphology.predictor (a vote predictor folder) given"
    if name == "morphology_fidelity":
        from galaxy_hpc.evaluate.morphology import vote_columns
        from hpc.store import open_store

        if not section.real:
            return "no real store: the predictor's floor needs real galaxies with true votes"
        try:
            vote_columns(open_store(section.real), section.vote_suffix)
        except ValueError:
            return (f"the real store {section.real} has no true vote fractions "
                    f"(<GZ2 stem>_{section.vote_suffix} columns) to give the predictor's floor")
    return None


def run_evaluate(cfg: EvaluateJobConfig, *, show_progress: bool = True) -> EvaluateSummary:
    """Collective: every rank runs every evaluation; rank 0 writes results and the report."""
    from galaxy_hpc.evaluate.clipscore import run_clipscore
    from galaxy_hpc.evaluate.conditioning import run_conditioning
    from galaxy_hpc.evaluate.fid import run_fid
    from galaxy_hpc.evaluate.morphology import run_morphology
    from galaxy_hpc.evaluate.morphology_fidelity import run_morphology_fidelity
    from galaxy_hpc.evaluate.physics import run_physics
    from galaxy_hpc.evaluate.results import write_result
    from hpc.comm import job_comm
    from hpc.files import check_writable

    check_writable(cfg.out, "the results folder (out)")  # every rank, before any work
    comm = job_comm()
    runners = {"fid": run_fid, "physics": run_physics, "morphology": run_morphology,
               "morphology_fidelity": run_morphology_fidelity,
               "conditioning": run_conditioning, "clipscore": run_clipscore}
    ran, skipped, summaries = [], {}, {}
    for name in cfg.evaluations:
        section = _filled(name, getattr(cfg, name), cfg)
        why = _skip(name, section)
        if why:
            skipped[name] = why
            continue
        if name == "clipscore" and not section.weights:
            skipped[name] = "no clipscore.weights (a CLIP folder) given"
            continue
        result = runners[name](section, show_progress=show_progress, comm=comm)
        if comm.rank == 0:
            write_result(cfg.out, name, result.to_dict())
        summaries[name] = result.summary()
        ran.append(name)
    report = None
    if cfg.report and comm.rank == 0:
        from galaxy_hpc.evaluate.report import build_report

        report = build_report(cfg.out).html
    report = comm.bcast(report)
    return EvaluateSummary(cfg.out, ran, skipped, summaries, report)
