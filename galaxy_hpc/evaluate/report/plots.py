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
