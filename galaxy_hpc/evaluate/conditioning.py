"""`evaluate conditioning`: does a conditional model put more light where it was asked for more mass?

galaxyCGAN's known failure: galaxies asked for a larger stellar mass sometimes came out
fainter. For each "requested:measured" pair this reports the Spearman rank correlation
between a requested quantity (a column of the generated store: what the model was asked
for) and one measured on the image (galaxy_hpc.data.photometry: total flux, half-light
radius), overall and within quantile bins of a third column (redshift by default, so
that distance dimming neither hides nor fakes a mass trend; the real store's bins for
both stores when one is given), with 68% bootstrap intervals. The same numbers on a real
store, whose columns are the truth, say what a faithful model would reach.

With a real store it also judges conditional fidelity (galaxy_hpc.data.fidelity): per
cell of a grid over the condition columns, the generated and real distributions of log
flux, size, colour and concentration against the real cell's split-half noise floor. A
catalog that drew each condition row K times (generate's conditions.per_row) is judged as
K draws of its rows (`draws: auto`): per cell the mean of the K draws' W1, the floor
scaled to one draw, the statistic a GAN run's fidelity.json states its targets in, so a
recipe's figures can be read again from a catalog made by `generate`.

Generated images are measured as the survey would see them (`match_noise`, with a real
store of float images): the pixel noise each lacks against the real store's median is
added before measuring, since a noise-free image reads larger radii (galaxy_hpc.data.
pixel_noise; uint8 composites are measured as drawn, saying why); both noise levels and
what was added are reported. The real store is measured first.

Measuring is split over ranks (whole batches); rank correlations and cell distributions
need every value, so the measurements (four floats a galaxy, and its pixel noise per
band) are gathered, and the statistics are computed on rank 0 and broadcast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from galaxy_hpc.data.photometry import consistency, measure, profile
from galaxy_hpc.data.pixel_noise import (NOT_MATCHABLE, add_matching_noise, matchable,
                                         noise_line, noise_report, pixel_noise, survey_noise)
from galaxy_hpc.evaluate.config import MEASURED, ConditioningConfig, require
from galaxy_hpc.data.fidelity import cell_fidelity, log_flux, rho_intervals
from galaxy_hpc.data.nonfinite import NonFinitePixels
from galaxy_hpc.evaluate.passes import (progress, rank_batches, read_batches,
                                        shared_failure)
from galaxy_hpc.evaluate.results import EvaluationResult, store_summary
from hpc.comm import Comm, job_comm, on_root
from hpc.store import Store, open_store

NUMERIC = ("float64", "float32", "int64")
POOLED = "every galaxy one sample"  # how a catalog not judged as draws of its rows is read


def _pairs(cfg: ConditioningConfig, store: Store) -> list[tuple[str, str]]:
    pairs = [tuple(p.split(":", 1)) for p in cfg.pairs]
    columns = store.spec.columns
    for requested, _ in pairs:
        if columns.get(requested) not in NUMERIC:
            numeric = ", ".join(c for c, t in columns.items() if t in NUMERIC) or "(none)"
            raise ValueError(f"{store.path}: no numeric column {requested!r} to use as a "
                             f"requested quantity; numeric columns: {numeric}")
    return pairs  # type: ignore[return-value]


def _grid_columns(cfg: ConditioningConfig, stores: list[tuple[str, Store]]) -> None:
    for _, store in stores:
        for column in cfg.grid:
            if store.spec.columns.get(column) not in NUMERIC:
                numeric = ", ".join(c for c, t in store.spec.columns.items()
                                    if t in NUMERIC) or "(none)"
                raise ValueError(f"{store.path}: no numeric column {column!r} for the "
                                 f"fidelity grid (grid); numeric columns: {numeric}")


@dataclass(frozen=True)
class Measured:
    """A store's measurements, gathered on every rank."""

    values: np.ndarray  # (N, 4) the MEASURED quantities
    noise: np.ndarray  # (N, C) each image's own pixel noise, before any was added
    added: np.ndarray | None  # (N, C) the noise sigma added before measuring, or None


def _measure(store: Store, cfg: ConditioningConfig, comm: Comm, bar,
             match: np.ndarray | None = None) -> Measured:
    """Every image's measurements, on every rank; with `match` (C,), each image is first
    given the pixel noise it lacks against it (galaxy_hpc.data.pixel_noise)."""
    parts, failure = [], None
    try:
        for first, images in read_batches(store, rank_batches(len(store), cfg.batch_size,
                                                              comm.rank, comm.size),
                                          use="the conditioning evaluation"):
            noise, added = pixel_noise(images), None
            if match is not None:
                images, added = add_matching_noise(images, match, seed=cfg.seed,
                                                   first_index=first, own=noise)
            photometry = measure(images)
            shape = profile(images, photometry, colour_bands=tuple(cfg.colour_bands))
            parts.append((first, np.stack([photometry.total_flux,
                                           photometry.half_light_radius, shape.colour,
                                           shape.concentration], 1), noise, added))
            bar.update(len(images))
    except NonFinitePixels as error:
        failure = error
    shared_failure(comm, failure)
    gathered = [part for rank_parts in comm.allgather(parts) for part in rank_parts]
    gathered.sort(key=lambda part: part[0])
    if not gathered:
        return Measured(np.empty((0, len(MEASURED))),
                        np.empty((0, store.spec.image_shape[0])), None)
    return Measured(np.concatenate([part[1] for part in gathered]),
                    np.concatenate([part[2] for part in gathered]),
                    None if match is None else np.concatenate([part[3] for part in gathered]))


def _correlations(store: Store, pairs: list[tuple[str, str]], measured: np.ndarray,
                  cfg: ConditioningConfig, reference: list[dict[str, Any]] | None = None
                  ) -> list[dict[str, Any]]:
    """Spearman rho of each pair, overall and per bin of `by`: the quantile bins of the
    `reference` correlations (the real store's) when given, so that a generated trend and
    the real one are read in the same bins; else this store's own."""
    by_name = cfg.by if cfg.by in store.spec.columns else None
    by = store.read_column(by_name).astype(np.float64) if by_name else None
    edges = {(c["requested"], c["measured"]): c["bin_edges"] for c in reference or []
             if c["by"] == by_name and c["bin_edges"]}
    out = []
    for requested, quantity in pairs:
        values = store.read_column(requested).astype(np.float64)
        binned = by if by_name != requested else None
        found = measured[:, MEASURED.index(quantity)]
        result = consistency(values, found, by=binned, num_bins=cfg.num_bins,
                             bin_edges=edges.get((requested, quantity)))
        intervals = rho_intervals(values, found, binned, list(result.bin_edges),
                                  num_bootstrap=cfg.num_bootstrap, seed=cfg.seed)
        out.append({"requested": requested, "measured": quantity,
                    "by": by_name if binned is not None else None, **result.to_dict(),
                    **intervals})
    return out


def _quantities(measured: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    columns = {name: measured[:, k] for k, name in enumerate(MEASURED)}
    columns["log_flux"] = log_flux(columns["total_flux"])
    return {name: columns[name] for name in names}


def draws_of_rows(store: Store) -> tuple[np.ndarray, str] | None:
    """(K, R) object indices when the catalog drew each of R condition rows exactly K > 1
    times (its source_row column; draw k of a row its k-th object in catalog order), with
    a line saying so; None for any other store (no source_row, one draw, or rows drawn
    unequal times: a catalog of `selection: sample`)."""
    if store.spec.columns.get("source_row") != "int64":
        return None
    rows = np.asarray(store.read_column("source_row"))
    if rows.size == 0:
        return None
    _, counts = np.unique(rows, return_counts=True)
    k = int(counts[0])
    if k < 2 or not (counts == k).all():
        return None
    order = np.lexsort((np.arange(rows.size), rows))  # by row, then catalog order
    return order.reshape(-1, k).T, f"{k} draws of each of {counts.size:,} condition rows"


def _fidelity(cfg: ConditioningConfig, generated: Store, real: Store,
              measured: dict[str, np.ndarray]) -> dict[str, Any]:
    grids = {name: {c: store.read_column(c).astype(np.float64) for c in cfg.grid}
             for name, store in (("generated", generated), ("real", real))}
    found = _quantities(measured["generated"], cfg.quantities)
    draws = draws_of_rows(generated) if cfg.draws == "auto" else None
    per_row, described = 1, POOLED
    if draws is not None:  # (K, R): a row's conditions are the same in each of its draws
        index, described = draws
        per_row = int(index.shape[0])
        found = {name: values[index] for name, values in found.items()}
        grids["generated"] = {c: values[index[0]] for c, values in grids["generated"].items()}
    cells = cell_fidelity(found, _quantities(measured["real"], cfg.quantities),
                          grids["generated"], grids["real"], num_bins=cfg.grid_bins,
                          min_per_cell=cfg.min_per_cell, num_splits=cfg.num_splits,
                          tolerance_sigmas=cfg.tolerance_sigmas, seed=cfg.seed)
    return {"quantities": list(cfg.quantities), "min_per_cell": cfg.min_per_cell,
            "num_splits": cfg.num_splits, "tolerance_sigmas": cfg.tolerance_sigmas,
            "colour": f"band {cfg.colour_bands[0]} - band {cfg.colour_bands[1]} (magnitudes)",
            "draws_per_row": per_row,
            "generated_as": described, **cells}


def fidelity_lines(fidelity: dict[str, Any]) -> list[str]:
    """One line per quantity: how many cells are within noise, off, too sparse."""
    lines = []
    for name in fidelity["quantities"]:
        found = [(cell, cell["quantities"][name]) for cell in fidelity["cells"]]
        status = [q["status"] for _, q in found]
        if all(s == "unmeasured" for s in status):
            lines.append(f"  {name}: not measured")
            continue
        line = (f"  {name}: {status.count('within')} of {len(found)} cells within noise, "
                f"{status.count('off')} off, {status.count('sparse')} too sparse")
        off = [(q["sigma"], cell) for cell, q in found if q["status"] == "off"]
        if off:
            sigma, cell = max(off, key=lambda pair: pair[0])
            line += f" (worst {sigma:.1f} sigma at {cell_label(cell)})"
        lines.append(line)
    return lines


def cell_label(cell: dict[str, Any]) -> str:
    return ", ".join(f"{c} {lo:.3g}-{hi:.3g}" for c, (lo, hi) in cell["ranges"].items()) \
        or "all galaxies"


def _bins(correlation: dict[str, Any]) -> str:
    return ", ".join(f"{r:.2f}" if r is not None and np.isfinite(r) else "-"
                     for r in correlation["bin_rho"])


class ConditioningResult(EvaluationResult):
    def summary(self) -> str:
        d = self.data
        real = {(c["requested"], c["measured"]): c for c in d.get("real_correlations", [])}
        lines = [f"conditioning: Spearman rho of requested vs measured, {d['num_generated']:,} "
                 f"generated galaxies" + (f" (real: {d['num_real']:,})" if real else "")]
        for c in d["correlations"]:
            reference = real.get((c["requested"], c["measured"]))
            line = f"{c['requested']} vs {c['measured']}: rho {c['rho']:.3f}"
            if c["by"]:
                line += f" (in {c['by']} bins: {_bins(c)}"
                line += f"; real {_bins(reference)})" if reference else ")"
            if reference:
                line += f"; real {reference['rho']:.3f}"
            lines.append(line)
        if d.get("fidelity"):
            grid = " x ".join(d["fidelity"]["grid"]) or "one cell"
            lines.append(f"conditional fidelity per cell of {grid} "
                         f"(W1 against the real split-half floor, within "
                         f"{d['fidelity']['tolerance_sigmas']:g} sigma; generated: "
                         f"{d['fidelity'].get('generated_as', POOLED)}):")
            lines += fidelity_lines(d["fidelity"])
        if d.get("pixel_noise"):
            lines.append(noise_line(d["pixel_noise"]))
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
    if real is not None:
        _grid_columns(cfg, stores)
    bar = progress(sum(b - a for _, s in stores
                       for a, b in rank_batches(len(s), cfg.batch_size, comm.rank, comm.size)),
                   f"photometry (rank 0 of {comm.size})", show_progress and comm.rank == 0)
    measured: dict[str, Measured] = {}
    if real is not None:  # first: the generated images are given the real images' noise
        measured["real"] = _measure(real, cfg, comm, bar)
    why_not = (NOT_MATCHABLE if real is not None and cfg.match_noise
               and not matchable(real.spec.image_dtype) else None)
    target = (survey_noise(measured["real"].noise)
              if real is not None and cfg.match_noise and not why_not and len(real) else None)
    measured["generated"] = _measure(generated, cfg, comm, bar, target)
    bar.close()

    def statistics() -> dict[str, Any]:
        values = {name: found.values for name, found in measured.items()}
        real_correlations = (_correlations(real, pairs["real"], values["real"], cfg)
                             if real is not None else None)
        result = {"evaluation": "conditioning", "num_generated": len(generated),
                  "generated": store_summary(generated),
                  "correlations": _correlations(generated, pairs["generated"],
                                                values["generated"], cfg, real_correlations),
                  "num_ranks": comm.size}
        if real is not None:
            result.update(num_real=len(real), real=store_summary(real),
                          real_correlations=real_correlations,
                          fidelity=_fidelity(cfg, generated, real, values))
            if len(real) and len(generated):
                result["pixel_noise"] = noise_report(measured["real"].noise,
                                                     measured["generated"].noise,
                                                     measured["generated"].added, why_not)
        result["seconds"] = time.perf_counter() - start
        return result

    # On rank 0 only; a ValueError there (a grid column with no finite value) is every
    # rank's, so none waits at the broadcast for ever.
    return ConditioningResult(on_root(comm, statistics))
