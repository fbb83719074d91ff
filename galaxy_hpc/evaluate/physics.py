"""`evaluate physics`: do generated galaxies have the sizes, fluxes and shapes of real ones?

statmorph (morphometry.py) measures up to `max_galaxies` evenly spaced galaxies of each
store, split over ranks (statmorph costs ~0.1-0.5 s a galaxy, so ranks pay off here more
than anywhere); the values (7 floats a galaxy) are gathered to rank 0, which reports per
parameter the Wasserstein-1 distance between the real and generated distributions (in
the parameter's units, and divided by the real values' standard deviation so parameters
compare), the medians, the share measured, and histograms on common bins (what the
report draws).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance

from galaxy_hpc.evaluate.config import PhysicsConfig, require
from galaxy_hpc.evaluate.morphometry import PARAMETERS, UNITS, measure
from galaxy_hpc.data.nonfinite import NonFinitePixels
from galaxy_hpc.evaluate.passes import progress, read_at, shared_failure, spaced_indices
from galaxy_hpc.evaluate.results import EvaluationResult, store_summary
from hpc.comm import Comm, job_comm
from hpc.mpi import split_range
from hpc.store import Store, open_store

BATCH = 32


class PhysicsResult(EvaluationResult):
    def summary(self) -> str:
        d = self.data
        lines = [f"physics: {d['num_measured']['real']:,} real and "
                 f"{d['num_measured']['generated']:,} generated galaxies measured with "
                 f"statmorph ({d['measured_fraction']['real']:.0%} / "
                 f"{d['measured_fraction']['generated']:.0%} usable), {d['num_ranks']} rank(s), "
                 f"{d['seconds']:.1f} s",
                 f"{'parameter':<18} {'W1':>10} {'W1/std':>8} {'median real':>12} "
                 f"{'median gen':>12}"]
        for name, p in d["parameters"].items():
            lines.append(f"{name:<18} {_num(p['wasserstein']):>10} {_num(p['wasserstein_std']):>8} "
                         f"{_num(p['median_real']):>12} {_num(p['median_generated']):>12}")
        return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.4g}"


def _measure_store(store: Store, cfg: PhysicsConfig, comm: Comm, bar) -> tuple[np.ndarray, ...]:
    """(indices, values, flags) of this store's chosen galaxies, gathered on every rank."""
    chosen = spaced_indices(len(store), cfg.max_galaxies)
    share = split_range(len(chosen), comm.rank, comm.size)
    mine = chosen[share.start:share.stop]
    values = np.empty((0, len(PARAMETERS)))
    flags = np.empty(0, dtype=np.int64)
    failure = None
    try:
        for _, images in read_at(store, mine, BATCH, use="the physics evaluation"):
            v, f = measure(images, band=cfg.band, threshold_sigmas=cfg.threshold_sigmas)
            values, flags = np.concatenate([values, v]), np.concatenate([flags, f])
            bar.update(len(images))
    except NonFinitePixels as error:
        failure = error
    shared_failure(comm, failure)
    parts = comm.allgather((mine, values, flags))
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def _histogram(real: np.ndarray, generated: np.ndarray, num_bins: int) -> dict[str, Any]:
    pooled = np.concatenate([real, generated])
    if pooled.size == 0:
        return {"edges": [], "real": [], "generated": []}
    lo, hi = np.percentile(pooled, [1, 99])
    if not hi > lo:
        lo, hi = float(pooled.min()) - 0.5, float(pooled.max()) + 0.5
    edges = np.linspace(lo, hi, num_bins + 1)
    return {"edges": edges.tolist(),
            "real": np.histogram(np.clip(real, lo, hi), edges)[0].tolist(),
            "generated": np.histogram(np.clip(generated, lo, hi), edges)[0].tolist()}


def compare(real: np.ndarray, generated: np.ndarray, num_bins: int) -> dict[str, Any]:
    """Per-parameter distances and histograms of (N, P) value arrays (NaN = not measured)."""
    out = {}
    for j, name in enumerate(PARAMETERS):
        r, g = real[:, j][np.isfinite(real[:, j])], generated[:, j][np.isfinite(generated[:, j])]
        w1 = float(wasserstein_distance(r, g)) if r.size and g.size else float("nan")
        std = float(np.std(r)) if r.size > 1 else float("nan")
        out[name] = {
            "wasserstein": w1, "wasserstein_std": w1 / std if std > 0 else float("nan"),
            "median_real": float(np.median(r)) if r.size else float("nan"),
            "median_generated": float(np.median(g)) if g.size else float("nan"),
            "num_real": int(r.size), "num_generated": int(g.size),
            "unit": UNITS.get(name, ""), "histogram": _histogram(r, g, num_bins)}
    return out


def run_physics(cfg: PhysicsConfig, *, show_progress: bool = True,
                comm: Comm | None = None) -> PhysicsResult:
    """Collective: run on every rank; every rank returns the same result."""
    start = time.perf_counter()
    require(cfg, "real", "generated")
    comm = comm or job_comm()
    real, generated = open_store(cfg.real), open_store(cfg.generated)
    if real.spec.image_dtype != generated.spec.image_dtype:
        raise ValueError(f"{real.path} holds {real.spec.image_dtype} images and "
                         f"{generated.path} {generated.spec.image_dtype}: fluxes would not "
                         "compare; evaluate like with like")
    totals = [len(split_range(len(spaced_indices(len(s), cfg.max_galaxies)), comm.rank,
                              comm.size)) for s in (real, generated)]
    bar = progress(sum(totals), f"statmorph (rank 0 of {comm.size})",
                   show_progress and comm.rank == 0)
    measured = {name: _measure_store(store, cfg, comm, bar)
                for name, store in (("real", real), ("generated", generated))}
    bar.close()
    result = None
    if comm.rank == 0:
        values = {name: m[1] for name, m in measured.items()}
        usable = {name: float(np.isfinite(v).all(axis=1).mean()) if len(v) else 0.0
                  for name, v in values.items()}
        result = {
            "evaluation": "physics",
            "parameters": compare(values["real"], values["generated"], cfg.num_bins),
            "num_measured": {name: int(len(v)) for name, v in values.items()},
            "measured_fraction": usable,
            "flags": {name: np.bincount(m[2], minlength=9).tolist()
                      for name, m in measured.items()},
            "band": cfg.band, "units_note": "total_flux in the images' own units (flux for "
            "float stores, summed pixel values for uint8 ones); radii in pixels",
            "real": store_summary(real), "generated": store_summary(generated),
            "num_ranks": comm.size, "seconds": time.perf_counter() - start,
        }
    return PhysicsResult(comm.bcast(result))
