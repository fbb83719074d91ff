"""Does the exported generator reproduce the data, not only follow its trend? The verdict
a recipe is stated in.

A GAN can follow the requested mass (a positive Spearman rho of mass vs flux) and still
over-state the trend: galaxies of one condition more alike than the data's, so the rank
correlation within a redshift bin comes out stronger than the real one and the flux at
a given condition too narrow. Two targets say whether a generator is faithful, both on
the same store rows as consistency.json (conditions of real galaxies, row numbers as
seeds, images from the exported generator as `generate` loads it):

- trends: the Spearman rho of the requested condition with measured flux and with
  half-light radius, per bin of `by`, within `max_rho_difference` of the real images'
  rho for the same rows, in every bin (68% bootstrap intervals beside them);
- cells: per cell of a grid over the condition columns (quantile bins of each), the
  Wasserstein-1 distance between generated and real values of each `judged` quantity
  at most `max_w1_over_floor` times the real cell's split-half floor (W1 between halves
  of the real cell, scaled to the sizes compared: what a perfect generator would show).

The generator may draw each row `draws_per_row` times (other seeds, the same condition):
the cells' W1 is then the mean over draws, which keeps its expected value and takes out
most of the generator's share of its noise (galaxy_hpc.data.fidelity: with one draw, a
perfect generator keeps all 16 judged cells within 1.5 x the floor only ~1 time in 5).
The trends are measured on the first draw, the galaxies of consistency.json.

Generated images are measured as the survey would see them: the pixel noise they lack
against the real images is added first (`match_noise`, galaxy_hpc.data.pixel_noise: the
synthetic set's own galaxies drawn noise-free fail two size cells at 1.6 x the floor),
and fidelity.json reports both noise levels and what was added.

The statistics are galaxy_hpc.data.fidelity's, the ones `evaluate conditioning` reports,
so this file and that evaluation of a catalog drawn with the same rows agree. A cell
with too few galaxies to judge (a corner of the condition space the data hardly fills,
such as low mass at high redshift in a flux-limited sample) is reported as sparse and
left out of the verdict; a quantity with no cell to judge fails it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from galaxy_hpc.data.fidelity import cell_fidelity, log_flux, rho_intervals
from galaxy_hpc.data.photometry import consistency, measure, profile
from galaxy_hpc.data.pixel_noise import (add_matching_noise, noise_line, noise_report,
                                         pixel_noise, survey_noise)

# What each measured quantity is, in the order `measured_quantities` returns them.
QUANTITIES = ("log_flux", "half_light_radius", "colour", "concentration")
TRENDS = (("total_flux", "flux"), ("half_light_radius", "size"))


def measured_quantities(images: np.ndarray,
                        colour_bands: tuple[int, int] = (0, 1)) -> dict[str, np.ndarray]:
    """{quantity: (N,)} for images (N, C, H, W) in store units."""
    photometry = measure(images)
    shape = profile(images, photometry, colour_bands=colour_bands)
    return {"log_flux": log_flux(photometry.total_flux),
            "half_light_radius": photometry.half_light_radius,
            "total_flux": photometry.total_flux, "colour": shape.colour,
            "concentration": shape.concentration}


def judge(generated: np.ndarray, real: np.ndarray, conditions: np.ndarray,
          names: Sequence[str], section: Any, *, requested: str, by: str | None,
          num_bins: int) -> dict[str, Any]:
    """The fidelity report of `generated` against `real` images drawn for the same
    `conditions` (N, K) in the order of `names`; `section` is model.fidelity. `generated`
    is (N, C, H, W), or (D, N, C, H, W): D draws of the same rows, the first one the
    trends' (see the module docstring)."""
    names = list(names)
    conditions = np.asarray(conditions, dtype=np.float64)
    generated = np.asarray(generated)
    draws = generated if generated.ndim == 5 else generated[None]
    bands = tuple(section.colour_bands)
    real_noise = pixel_noise(real)
    own_noise = pixel_noise(draws.reshape(-1, *draws.shape[2:]))  # (D x N, C)
    target = survey_noise(real_noise) if section.match_noise else None
    measured, sigmas = [], []
    for d, draw in enumerate(draws):  # one matched draw in memory at a time
        if target is not None:  # draw d of row k: image d x N + k of the (D x N) catalog
            first = d * len(draw)
            draw, sigma = add_matching_noise(draw, target, seed=section.seed,
                                             first_index=first,
                                             own=own_noise[first:first + len(draw)])
            sigmas.append(sigma)
        measured.append(measured_quantities(draw, bands))
    added = np.concatenate(sigmas) if sigmas else None
    found = {"generated": measured[0], "real": measured_quantities(real, bands)}
    grid = {name: conditions[:, k] for k, name in enumerate(names)}
    cells = cell_fidelity({q: np.stack([m[q] for m in measured]) for q in QUANTITIES},
                          {q: found["real"][q] for q in QUANTITIES}, grid, grid,
                          num_bins=section.grid_bins, min_per_cell=section.min_per_cell,
                          num_splits=section.num_splits,
                          tolerance_sigmas=section.tolerance_sigmas, seed=section.seed)
    wanted = conditions[:, names.index(requested)]
    binned = conditions[:, names.index(by)] if by is not None else None
    trends = []
    for measured, label in TRENDS:
        sides = {}
        for side in ("real", "generated"):
            values = found[side][measured]
            result = consistency(wanted, values, by=binned, num_bins=num_bins)
            sides[side] = {**result.to_dict(), **rho_intervals(
                wanted, values, binned, list(result.bin_edges),
                num_bootstrap=section.num_bootstrap, seed=section.seed)}
        gen = sides["generated"]["bin_rho"] if by is not None else [sides["generated"]["rho"]]
        ref = sides["real"]["bin_rho"] if by is not None else [sides["real"]["rho"]]
        difference = [_finite(g - r) for g, r in zip(gen, ref)]
        trends.append({"requested": requested, "measured": measured, "label": label,
                       "by": by, "generated": _clean(sides["generated"]),
                       "real": _clean(sides["real"]), "difference": difference,
                       "met": all(d is not None and abs(d) <= section.max_rho_difference
                                  for d in difference)})
    ratios = {q: [cell["quantities"][q].get("w1_over_floor") for cell in cells["cells"]]
              for q in section.judged}
    cells_met = {q: any(r is not None for r in rs) and all(
        r <= section.max_w1_over_floor for r in rs if r is not None) for q, rs in ratios.items()}
    met = all(t["met"] for t in trends) and all(cells_met.values())
    return {"num_samples": int(len(conditions)), "draws_per_row": len(draws),
            "requested": requested, "by": by,
            "targets": {"max_rho_difference": section.max_rho_difference,
                        "max_w1_over_floor": section.max_w1_over_floor,
                        "judged": list(section.judged)},
            "met": met, "trends_met": all(t["met"] for t in trends), "cells_met": cells_met,
            "pixel_noise": noise_report(real_noise, own_noise, added),
            "trends": trends, "w1_over_floor": ratios,
            "fidelity": {"quantities": list(QUANTITIES), "min_per_cell": section.min_per_cell,
                         "num_splits": section.num_splits,
                         "tolerance_sigmas": section.tolerance_sigmas,
                         **_clean(cells)}}


def held_out_score(generated: dict[str, np.ndarray], real: dict[str, np.ndarray],
                   conditions: np.ndarray, names: Sequence[str], section: Any
                   ) -> tuple[float, dict[str, float]]:
    """The GAN's validation loss: the cell statistic of `judge` on the held-out rows, so
    that the best checkpoint is the one nearest the targets a recipe is stated in.
    `generated` maps each judged quantity to (N, K), K draws of the N held-out rows;
    `real` to (N,). Loss: the mean W1/floor over every judged (cell, quantity), a
    perfect generator's ~1. A mean, not the target's worst cell: the worst of a dozen
    noisy ratios jumps between cells from one validation to the next, the mean moves
    with the whole generator. Terms: the mean per quantity, the worst cell and how many
    (cell, quantity) pairs were judged. A held-out set too small for any cell of the
    grid is judged as one cell (cells_judged 0 says so)."""
    grid = {name: np.asarray(conditions, dtype=np.float64)[:, k]
            for k, name in enumerate(names)}
    judged = list(section.judged)
    ratios: dict[str, list[float]] = {}
    for num_bins in dict.fromkeys((section.grid_bins, 1)):  # the grid, else one cell
        cells = cell_fidelity({q: np.asarray(generated[q], dtype=np.float64).T for q in judged},
                              {q: np.asarray(real[q], dtype=np.float64) for q in judged},
                              grid, grid, num_bins=num_bins,
                              min_per_cell=min(section.min_per_cell, len(conditions) // 2),
                              num_splits=section.num_splits,
                              tolerance_sigmas=section.tolerance_sigmas, seed=section.seed)
        ratios = {q: [c["quantities"][q]["w1_over_floor"] for c in cells["cells"]
                      if c["quantities"][q].get("w1_over_floor") is not None] for q in judged}
        if any(ratios.values()):
            break
    found = [r for rs in ratios.values() for r in rs]
    if not found:  # nothing finite to compare, not even pooled
        return float("inf"), {"cells_judged": 0.0}
    terms = {f"w1_over_floor_{q}": float(np.mean(rs)) for q, rs in ratios.items() if rs}
    terms["w1_over_floor_worst"] = float(max(found))
    terms["cells_judged"] = float(len(found)) if num_bins == section.grid_bins else 0.0
    return float(np.mean(found)), terms


def summary_lines(report: dict[str, Any]) -> list[str]:
    """What the run's log says of the targets: one line per trend and per judged quantity."""
    def show(values: Sequence[float | None]) -> str:
        return ", ".join("-" if v is None else f"{v:+.2f}" for v in values)

    by = f" per {report['by']} bin" if report["by"] else ""
    targets = report["targets"]
    draws = report.get("draws_per_row", 1)
    drawn = f", {draws} draws each" if draws > 1 else ""
    lines = [f"fidelity of the exported generator ({report['num_samples']} store rows{drawn}): "
             f"targets {'MET' if report['met'] else 'NOT MET'} (rho within "
             f"{targets['max_rho_difference']:g} of the real, W1 <= "
             f"{targets['max_w1_over_floor']:g} x the split-half floor per cell)"]
    for trend in report["trends"]:
        key = "bin_rho" if trend["by"] else "rho"
        gen, real = trend["generated"][key], trend["real"][key]
        gen, real = (gen, real) if isinstance(gen, list) else ([gen], [real])
        lines.append(f"  rho({trend['requested']}, {trend['label']}){by}: generated "
                     f"[{show(gen)}], real [{show(real)}]: "
                     f"{'met' if trend['met'] else 'not met'}")
    for quantity, ratios in report["w1_over_floor"].items():
        shown = ", ".join("sparse" if r is None else f"{r:.2f}" for r in ratios)
        verdict = "met" if report["cells_met"][quantity] else "not met"
        if all(r is None for r in ratios):  # the store, not the generator, is what falls short
            verdict = ("not met: no cell holds model.fidelity.min_per_cell galaxies to judge; "
                       "judge more rows (model.consistency.report_num_samples, a larger "
                       "store) or fewer cells (model.fidelity.grid_bins)")
        lines.append(f"  W1/floor of {quantity} per cell: [{shown}]: {verdict}")
    if report.get("pixel_noise"):
        lines.append("  " + noise_line(report["pixel_noise"]))
    return lines


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The figures a recipe quotes, for the run's train_result.json: per-bin rho of each
    trend (generated and real) and W1/floor per cell of each judged quantity."""
    key = "bin_rho" if report["by"] else "rho"
    out: dict[str, Any] = {f"rho_{t['label']}": {"generated": t["generated"][key],
                                                 "real": t["real"][key]}
                           for t in report["trends"]}
    out["w1_over_floor"] = report["w1_over_floor"]
    return out


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _clean(value: Any) -> Any:
    """NaN and infinities as null, tuples as lists, numpy scalars as floats: strict JSON."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return _finite(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value
