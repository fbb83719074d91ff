"""The report's conditioning section: Spearman trends per bin, generated beside real with
their 68% bootstrap intervals, and the conditional-fidelity table of each quantity (one
row a cell, coloured by its verdict) with the plot of medians and scatter per cell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from galaxy_hpc.data.pixel_noise import noise_line
from galaxy_hpc.evaluate.report import html
from galaxy_hpc.evaluate.report.plots import fidelity_medians


def _rho(value: float | None, interval: list[float] | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")


def _bin(correlation: dict[str, Any] | None, b: int) -> str:
    """Bin b's rho and interval, "-" when the correlation has no such bin."""
    if not correlation or not correlation.get("by") or b >= len(correlation["bin_rho"]):
        return "-"
    intervals = correlation.get("bin_rho_interval") or []
    return _rho(correlation["bin_rho"][b], intervals[b] if b < len(intervals) else None)


def _trend_rows(cond: dict[str, Any]) -> list[list[Any]]:
    """Overall, then per bin of `by` (the real store's quantile bins, for both stores)."""
    real = {(c["requested"], c["measured"]): c for c in cond.get("real_correlations", [])}
    rows = []
    for c in cond["correlations"]:
        reference = real.get((c["requested"], c["measured"]))
        rows.append([c["requested"], c["measured"], "all",
                     _rho(c["rho"], c.get("rho_interval")),
                     _rho(reference["rho"], reference.get("rho_interval")) if reference
                     else "-"])
        for b in range(len(c["bin_rho"]) if c["by"] else 0):
            lo, hi = c["bin_edges"][b], c["bin_edges"][b + 1]
            rows.append(["", "", f"{c['by']} {lo:.3g}-{hi:.3g}", _bin(c, b),
                         _bin(reference, b)])
    return rows


def _cell(cell: dict[str, Any]) -> str:
    return "; ".join(f"{c} {lo:.3g}-{hi:.3g}" for c, (lo, hi) in cell["ranges"].items()) \
        or "all galaxies"


def _fidelity_tables(fidelity: dict[str, Any]) -> str:
    out = []
    for name in fidelity["quantities"]:
        rows, classes = [], []
        for cell in fidelity["cells"]:
            q = cell["quantities"][name]
            rows.append([_cell(cell), q.get("num_generated"), q.get("num_real"),
                         q.get("median_generated"), q.get("median_real"),
                         q.get("scatter_generated"), q.get("scatter_real"), q.get("w1"),
                         q.get("floor"), q.get("w1_over_floor"), q["verdict"]])
            classes.append(q["status"])
        out.append(f"<h3>{html.num(name)}</h3>" + html.table(
            ["cell", "n gen", "n real", "median gen", "median real", "scatter gen",
             "scatter real", "W1", "floor", "W1 / floor", "verdict"], rows, classes))
    return "".join(out)


def conditioning_section(cond: dict[str, Any], folder: Path, images: list[str]) -> str:
    has_real = bool(cond.get("real_correlations"))
    parts = ["<h2>Conditioning: requested vs measured (Spearman rho)</h2>",
             html.notes(["rho with its 68% bootstrap interval [16th, 84th percentile]"
                         + (", generated beside real" if has_real else "")]),
             html.table(["requested", "measured", "bin", "rho generated", "rho real"],
                        _trend_rows(cond))]
    fidelity = cond.get("fidelity")
    if fidelity:
        chart = fidelity_medians(fidelity, folder)
        images.append(chart)
        grid = " x ".join(fidelity["grid"]) or "one cell"
        parts += ["<h2>Conditional fidelity per cell</h2>", html.notes([
            f"Cells: real-store quantile bins of {grid}. Per cell, W1 between the generated "
            "and real values against the floor, the real cell's own split-half W1 scaled to "
            "the sample sizes; 'within noise' while W1 lies within "
            f"{fidelity['tolerance_sigmas']:g} sigma of it (sigma on a log scale, "
            f"{fidelity['num_splits']} splits); cells with fewer than "
            f"{fidelity['min_per_cell']} galaxies in either store are too sparse to judge. "
            f"Scatter: half the 16-84 percentile width. Colour: {fidelity['colour']}."]
            + ([noise_line(cond["pixel_noise"]) + " (a noise-free image reads larger "
                "half-light radii)"] if cond.get("pixel_noise") else [])),
            html.image(chart, "median per cell, bars: scatter (generated red, real blue)",
                       "plots"),
            _fidelity_tables(fidelity)]
    return "".join(parts)
