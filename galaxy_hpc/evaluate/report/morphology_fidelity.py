"""The report's morphology-fidelity section: per GZ2 question the MAE of predicted against
requested vote fractions beside the predictor's floor, each with its standard error,
their ratio and the verdict (rows coloured by it), and the requested-vs-predicted plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from galaxy_hpc.data.pixel_noise import noise_line
from galaxy_hpc.evaluate.report import html
from galaxy_hpc.evaluate.report.plots import vote_calibration

# Verdict statuses -> the report's row colours (html.STYLE: within, off, sparse).
ROW_CLASS = {"pass": "within", "fail": "off", "sparse": "sparse", "no_floor": "sparse"}


def morphology_fidelity_section(result: dict[str, Any], folder: Path,
                                images: list[str]) -> str:
    targets = result["targets"]
    rows = [[f"Q{q['question']} {q['slug']}", q["mae"], q.get("mae_se"), q["floor"],
             q.get("floor_se"), q["ratio"], q["num_generated"], q["num_real"], q["verdict"]]
            for q in result["questions"]]
    o = result["overall"]
    rows.append(["all questions (pooled)", o["mae"], "", o["floor"], "", o["ratio"], "", "",
                 ""])
    classes = [ROW_CLASS[q["status"]] for q in result["questions"]] + [""]
    chart = vote_calibration(result, folder)
    images.append(chart)
    return ("<h2>Morphology fidelity: predicted vs requested vote fractions, against the "
            "predictor's floor</h2>"
            + html.notes([f"{result['verdict']}",
                          f"predictor {result['predictor']}; floor: its MAE against the true "
                          f"fractions of {result['floor_galaxies']['description']}. A question "
                          f"passes with MAE <= {targets['max_mae']:g} and <= "
                          f"{targets['max_floor_ratio']:g}x the floor; it counts for a galaxy "
                          f"where at least {result['min_reach']:g} of the volunteers reached "
                          "it."]
                         + ([noise_line(result["pixel_noise"])
                             + _noise_meaning(result["pixel_noise"])]
                            if result.get("pixel_noise") else [])
                         + result["notes"])
            + html.table(["question", "MAE", "± (std error)", "floor", "±", "MAE / floor",
                          "n generated", "n real", "verdict"], rows, classes)
            + html.image(chart, "mean predicted fraction per requested-fraction bin, per "
                         "answer (bars: std); dotted: real galaxies' true vs predicted",
                         "plots"))


def _noise_meaning(noise: dict[str, Any]) -> str:
    """What the noise line means for the verdict."""
    if noise["matched"]:
        return (". Matched, a perfect generator of noise-free galaxies reads at the floor, "
                "which is measured on noisy real ones.")
    if noise.get("not_matched_because"):
        return (". A noise-free galaxy reads a little more easily than a noisy one: against "
                "this floor a noise-free generator reads up to ~15% better than it is "
                "(docs/evaluate.md, morphology fidelity).")
    return ""
