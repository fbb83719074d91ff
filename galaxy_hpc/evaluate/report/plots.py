"""PNG figures of the report (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

REAL_COLOUR, GENERATED_COLOUR = "#1f77b4", "#d62728"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def physics_histograms(parameters: dict[str, Any], folder: Path) -> list[dict[str, str]]:
    """One histogram per parameter (real and generated on common bins, normalised)."""
    plt = _pyplot()
    files = []
    for name, p in parameters.items():
        hist = p["histogram"]
        if not hist["edges"]:
            continue
        edges = np.asarray(hist["edges"])
        fig, ax = plt.subplots(figsize=(4.0, 2.8), dpi=100)
        for side, colour in (("real", REAL_COLOUR), ("generated", GENERATED_COLOUR)):
            counts = np.asarray(hist[side], dtype=float)
            if counts.sum() > 0:
                ax.stairs(counts / counts.sum(), edges, color=colour, label=side, linewidth=1.6)
        unit = f" ({p['unit']})" if p.get("unit") else ""
        ax.set_xlabel(name.replace("_", " ") + unit)
        ax.set_ylabel("fraction")
        w1 = p.get("wasserstein")
        ax.set_title(f"W1 = {w1:.3g}" if w1 is not None else "W1 = -", fontsize=9)
        ax.legend(fontsize=8, frameon=False)
        fig.tight_layout()
        file = f"physics-{name}.png"
        fig.savefig(folder / file)
        plt.close(fig)
        files.append({"parameter": name, "file": file})
    return files


def morphology_chart(result: dict[str, Any], folder: Path) -> str:
    """Per-question r and MAE bars, generated (and real, when scored)."""
    plt = _pyplot()
    sides = [("generated", result["generated_scores"], GENERATED_COLOUR)]
    if result.get("real_scores"):
        sides.append(("real", result["real_scores"], REAL_COLOUR))
    labels = [f"Q{q['question']}" for q in result["generated_scores"]["questions"]]
    x = np.arange(len(labels))
    width = 0.8 / len(sides)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 2.8), dpi=100)
    for k, (side, scores, colour) in enumerate(sides):
        for ax, key in zip(axes, ("r", "mae")):
            values = [np.nan if q[key] is None else q[key] for q in scores["questions"]]
            ax.bar(x + (k - (len(sides) - 1) / 2) * width, values, width, color=colour,
                   label=side)
    for ax, title in zip(axes, ("Pearson r (requested vs predicted)", "mean absolute error")):
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    file = "morphology.png"
    fig.savefig(folder / file)
    plt.close(fig)
    return file


def fidelity_medians(fidelity: dict[str, Any], folder: Path) -> str:
    """Generated vs real median per cell, bars the scatter (16-84 half-width), one panel
    per quantity; cells too sparse to judge are shaded grey, cells judged off red."""
    plt = _pyplot()
    names = fidelity["quantities"]
    cells = fidelity["cells"]
    x = np.arange(len(cells))
    labels = [",".join(str(b) for b in cell["bins"]) or "all" for cell in cells]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.9), dpi=100,
                             squeeze=False)
    for ax, name in zip(axes[0], names):
        found = [cell["quantities"][name] for cell in cells]
        for k, q in enumerate(found):
            if q["status"] in ("sparse", "unmeasured"):
                ax.axvspan(k - 0.5, k + 0.5, color="#dddddd", linewidth=0)
            elif q["status"] == "off":
                ax.axvspan(k - 0.5, k + 0.5, color="#fde2e1", linewidth=0)
        for side, colour, shift in (("real", REAL_COLOUR, -0.12),
                                    ("generated", GENERATED_COLOUR, 0.12)):
            median = np.array([np.nan if q.get(f"median_{side}") is None
                               else q[f"median_{side}"] for q in found])
            spread = np.array([np.nan if q.get(f"scatter_{side}") is None
                               else q[f"scatter_{side}"] for q in found])
            ax.errorbar(x + shift, median, yerr=spread, fmt="o", color=colour, markersize=4,
                        capsize=2, label=side)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_xlabel("cell (" + ", ".join(fidelity["grid"]) + " bin)" if fidelity["grid"]
                      else "", fontsize=8)
        ax.set_title(name.replace("_", " "), fontsize=9)
    axes[0][0].legend(fontsize=8, frameon=False)
    fig.tight_layout()
    file = "fidelity.png"
    fig.savefig(folder / file)
    plt.close(fig)
    return file


def vote_calibration(result: dict[str, Any], folder: Path) -> str:
    """Requested vs predicted vote fraction, one panel per GZ2 question: per answer the
    mean predicted fraction in each requested-fraction bin (bars: its std), generated
    solid, real (true vs predicted: the predictor's own error) dotted; the diagonal is
    perfect fidelity."""
    plt = _pyplot()
    calibration = result["calibration"]
    edges = np.asarray(calibration["bin_edges"])
    centres = 0.5 * (edges[:-1] + edges[1:])
    questions = result["questions"]
    columns = 4
    rows = -(-len(questions) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 2.7 * rows), dpi=100,
                             squeeze=False)
    by_question: dict[int, list[tuple[dict, dict]]] = {}
    for gen, real in zip(calibration["generated"], calibration["real"]):
        by_question.setdefault(gen["question"], []).append((gen, real))
    for ax, q in zip(axes.flat, questions):
        ax.plot([0, 1], [0, 1], color="#999999", linewidth=0.8, linestyle="--")
        for k, (gen, real) in enumerate(by_question.get(q["question"], [])):
            colour = f"C{k}"
            for side, style in ((gen, "-"), (real, ":")):
                mean = np.array([np.nan if v is None else v for v in side["mean_predicted"]])
                std = np.array([np.nan if v is None else v for v in side["std_predicted"]])
                ax.errorbar(centres, mean, yerr=std if style == "-" else None, color=colour,
                            linestyle=style, marker="o" if style == "-" else None,
                            markersize=2.5, linewidth=1.1, capsize=1.5,
                            label=side["text"][:18] if style == "-" else None)
        mae = "-" if q["mae"] is None else f"{q['mae']:.3f}"
        floor = "-" if q["floor"] is None else f"{q['floor']:.3f}"
        ax.set_title(f"Q{q['question']} {q['slug']}\nMAE {mae}, floor {floor}", fontsize=8,
                     color="#d62728" if q["status"] == "fail" else "#222222")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, frameon=False, loc="upper left")
    for ax in list(axes.flat)[len(questions):]:
        ax.axis("off")
    fig.supxlabel("requested fraction (real: true fraction)", fontsize=9)
    fig.supylabel("predicted fraction", fontsize=9)
    fig.tight_layout()
    file = "morphology-fidelity.png"
    fig.savefig(folder / file)
    plt.close(fig)
    return file


def clip_score_histogram(clip: dict[str, Any], folder: Path) -> str:
    """The per-image CLIP scores' histogram; the file name, relative to `folder`."""
    plt = _pyplot()
    hist = clip["histogram"]
    fig, ax = plt.subplots(figsize=(4.0, 2.8), dpi=100)
    ax.stairs(np.asarray(hist["counts"], dtype=float), np.asarray(hist["edges"]),
              color=GENERATED_COLOUR, fill=True, alpha=0.6)
    mean = clip["metrics"]["clip_score_mean"]
    ax.axvline(mean, color="k", linewidth=1)
    ax.set_xlabel("CLIP score (100 cos)")
    ax.set_ylabel("images")
    ax.set_title(f"mean {mean:.3g}", fontsize=9)
    fig.tight_layout()
    name = "clipscore.png"
    fig.savefig(folder / name)
    plt.close(fig)
    return name
