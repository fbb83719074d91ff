"""`evaluate conditioning`: does a conditional model put more light where it was asked for more mass?

galaxyCGAN's known failure: galaxies asked for a larger stellar mass sometimes came out
fainter. For each "requested:measured" pair this reports the Spearman rank correlation
between a requested quantity (a column of the generated store: what the model was asked
for) and one measured on the image (galaxy_hpc.data.photometry: total flux, half-light
radius), overall and within quantile bins of a third column (redshift by default, so
that distance dimming neither hides nor fakes a mass trend). The same numbers on a real
store, whose columns are the truth, say what a faithful model would reach.

Measuring is split over ranks (whole batches); rank correlations need every value, so
the measurements (two floats a galaxy) are gathered to rank 0.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from galaxy_hpc.data.photometry import consistency, measure
from galaxy_hpc.evaluate.config import MEASURED, ConditioningConfig, require
from galaxy_hpc.data.nonfinite import NonFinitePixels
from galaxy_hpc.evaluate.passes import progress, rank_batches, read_batches, shared_failure
from galaxy_hpc.evaluate.results import EvaluationResult, store_summary
from hpc.comm import Comm, job_comm
from hpc.store import Store, open_store

NUMERIC = ("float64", "float32", "int64")


def _pairs(cfg: ConditioningConfig, store: Store) -> list[tuple[str, str]]:
    pairs = [tuple(p.split(":", 1)) for p in cfg.pairs]
    columns = store.spec.columns
    for requested, _ in pairs:
        if columns.get(requested) not in NUMERIC:
            numeric = ", ".join(c for c, t in columns.items() if t in NUMERIC) or "(none)"
            raise ValueError(f"{store.path}: no numeric column {requested!r} to use as a "
                             f"requested quantity; numeric columns: {numeric}")
    return pairs  # type: ignore[return-value]


def _measure(store: Store, cfg: ConditioningConfig, comm: Comm, bar) -> np.ndarray:
    """(N, 2) total flux and half-light radius of every image, on every rank."""
    parts, failure = [], None
    try:
        for first, images in read_batches(store, rank_batches(len(store), cfg.batch_size,
                                                              comm.rank, comm.size),
                                          use="the conditioning evaluation"):
            photometry = measure(images)
            parts.append((first, np.stack([photometry.total_flux,
                                           photometry.half_light_radius], 1)))
            bar.update(len(images))
    except NonFinitePixels as error:
        failure = error
    shared_failure(comm, failure)
    gathered = [part for rank_parts in comm.allgather(parts) for part in rank_parts]
    gathered.sort(key=lambda part: part[0])
    return np.concatenate([values for _, values in gathered]) if gathered \
        else np.empty((0, 2))


def _correlations(store: Store, pairs: list[tuple[str, str]], measured: np.ndarray,
                  cfg: ConditioningConfig) -> list[dict[str, Any]]:
    by_name = cfg.by if cfg.by in store.spec.columns else None
    by = store.read_column(by_name).astype(np.float64) if by_name else None
    out = []
    for requested, quantity in pairs:
        values = store.read_column(requested).astype(np.float64)
        binned = by if by_name != requested else None
        result = consistency(values, measured[:, MEASURED.index(quantity)], by=binned,
                             num_bins=cfg.num_bins)
        out.append({"requested": requested, "measured": quantity,
                    "by": by_name if binned is not None else None, **result.to_dict()})
    return out


class ConditioningResult(EvaluationResult):
    def summary(self) -> str:
        d = self.data
        real = {(c["requested"], c["measured"]): c for c in d.get("real_correlations", [])}
        lines = [f"conditioning: Spearman rho of requested vs measured, {d['num_generated']:,} "
                 f"generated galaxies" + (f" (real: {d['num_real']:,})" if real else "")]
        for c in d["correlations"]:
            bins = ", ".join(f"{r:.2f}" if np.isfinite(r) else "-" for r in c["bin_rho"])
            line = f"{c['requested']} vs {c['measured']}: rho {c['rho']:.3f}"
            if c["by"]:
                line += f" (in {c['by']} bins: {bins})"
            if (c["requested"], c["measured"]) in real:
                line += f"; real {real[(c['requested'], c['measured'])]['rho']:.3f}"
            lines.append(line)
        return "\n".join(lines)


def run_conditioning(cfg: ConditioningConfig, *, show_progress: bool = True,
                     comm: Comm | None = None) -> ConditioningResult:
    """Collective: run on every rank; every rank returns the same result."""
    start = time.perf_counter()
    require(cfg, "generated")
    comm = comm or job_comm()
    generated = open_store(cfg.generated)
    real = open_store(cfg.real) if cfg.real else None
    stores = [("generated", generated)] + ([("real", real)] if real is not None else [])
    pairs = {name: _pairs(cfg, store) for name, store in stores}
    bar = progress(sum(b - a for _, s in stores
                       for a, b in rank_batches(len(s), cfg.batch_size, comm.rank, comm.size)),
                   f"photometry (rank 0 of {comm.size})", show_progress and comm.rank == 0)
    measured = {name: _measure(store, cfg, comm, bar) for name, store in stores}
    bar.close()
    result = None
    if comm.rank == 0:
        result = {"evaluation": "conditioning", "num_generated": len(generated),
                  "generated": store_summary(generated),
                  "correlations": _correlations(generated, pairs["generated"],
                                                measured["generated"], cfg),
                  "num_ranks": comm.size}
        if real is not None:
            result.update(num_real=len(real), real=store_summary(real),
                          real_correlations=_correlations(real, pairs["real"], measured["real"],
                                                          cfg))
        result["seconds"] = time.perf_counter() - start
    return ConditioningResult(comm.bcast(result))
