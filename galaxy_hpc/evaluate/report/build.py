"""Assemble the report: each section from the result that feeds it, skipped when absent.

A report covers the results of one generated store (selection.py): its title, the page's
first line and the JSON summary name it, and a folder that mixes catalogs gets a warning.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import galaxy_hpc
from galaxy_hpc.evaluate.report import html
from galaxy_hpc.evaluate.report.comparison import comparison_section
from galaxy_hpc.evaluate.report.conditioning import conditioning_section
from galaxy_hpc.evaluate.report.grids import write_grids
from galaxy_hpc.evaluate.report.morphology_fidelity import morphology_fidelity_section
from galaxy_hpc.evaluate.report.plots import (
    clip_score_histogram,
    morphology_chart,
    physics_histograms,
)
from galaxy_hpc.evaluate.report.selection import select
from galaxy_hpc.evaluate.results import read_results
from hpc.store import open_store


@dataclass
class ReportResult:
    html: str
    images: list[str]
    sections: list[str]
    notes: list[str]
    generated: dict[str, Any] | None = None  # {"path", "checksum"} of the store covered
    left_out: list[str] | None = None  # results of other generated stores in the folder

    def to_dict(self) -> dict[str, Any]:
        return {"html": self.html, "images": self.images, "sections": self.sections,
                "notes": self.notes, "generated": self.generated,
                "left_out": self.left_out or []}

    def summary(self) -> str:
        covers = (f"; covers generated store {self.generated['path']}" if self.generated
                  else "")
        lines = [f"wrote {self.html} ({len(self.images)} PNG(s) beside it; sections: "
                 f"{', '.join(self.sections)}){covers}"]
        return "\n".join(lines + self.notes)


def _fid_section(fid: dict[str, Any]) -> str:
    m = fid["metrics"]
    rows = [["FID", m["fid"], "every image (float64 sums)"]]
    if "kid_mean" in m:
        rows.append(["KID", m["kid_mean"], f"+- {html.num(m['kid_std'])}; {fid['kid']['subsets']} "
                     f"subsets of {fid['kid']['subset_size']}"])
    if "isc_mean" in m:
        rows.append(["Inception Score (generated)", m["isc_mean"], f"+- {html.num(m['isc_std'])}"])
        rows.append(["Inception Score (real)", m["real_isc_mean"],
                     f"+- {html.num(m['real_isc_std'])}"])
    for key in ("precision", "recall", "f_score"):
        if key in m:
            rows.append([key.replace("_", "-"), m[key], "kept features"])
    facts = [["extractor", fid["extractor_description"]],
             ["images", f"{fid['num_real']:,} real, {fid['num_generated']:,} generated"],
             ["input", fid["input_description"]],
             ["ranks", f"{fid['num_ranks']} on {fid['device']}, {fid['seconds']:.1f} s"],
             ["real statistics", f"cache {fid['cache']['status']}"]]
    skipped = [f"skipped {k}: {v}" for k, v in fid.get("skipped", {}).items()]
    return ("<h2>Distribution metrics</h2>" + html.table(["metric", "value", "how"], rows)
            + html.table(["", ""], facts) + html.notes(fid.get("notes", []) + skipped))


def _physics_section(physics: dict[str, Any], folder: Path, images: list[str]) -> str:
    rows = [[name, p["wasserstein"], p["wasserstein_std"], p["median_real"],
             p["median_generated"], p["num_real"], p["num_generated"]]
            for name, p in physics["parameters"].items()]
    plots = physics_histograms(physics["parameters"], folder)
    images += [p["file"] for p in plots]
    figures = "".join(html.image(p["file"], p["parameter"], "plots") for p in plots)
    n, used = physics["num_measured"], physics["measured_fraction"]
    return ("<h2>Physical parameters (statmorph)</h2>"
            + html.table(["parameter", "W1", "W1 / std(real)", "median real", "median generated",
                          "n real", "n generated"], rows)
            + html.notes([f"measured {n['real']:,} real and {n['generated']:,} generated "
                          f"galaxies; usable {used['real']:.0%} / {used['generated']:.0%}",
                          physics["units_note"]])
            + f'<div class="pair">{figures}</div>')


def _morphology_section(morph: dict[str, Any], folder: Path, images: list[str]) -> str:
    real = morph.get("real_scores")
    header = ["question", "r", "MAE", "n"] + (["real r", "real MAE"] if real else [])
    rows = []
    for k, q in enumerate(morph["generated_scores"]["questions"]):
        row = [f"Q{q['question']} {q['slug']}", q["r"], q["mae"], q["n"]]
        if real:
            row += [real["questions"][k]["r"], real["questions"][k]["mae"]]
        rows.append(row)
    chart = morphology_chart(morph, folder)
    images.append(chart)
    overall = morph["generated_scores"]["overall"]
    return ("<h2>Morphology: predicted vs requested GZ2 vote fractions</h2>"
            + html.notes([f"predictor {morph['predictor']} (image size "
                          f"{morph['predictor_image_size']}); overall r "
                          f"{html.num(overall['r'])}, MAE {html.num(overall['mae'])}"])
            + html.table(header, rows) + html.image(chart, "per-question r and MAE", "plots"))


def _clipscore_section(clip: dict[str, Any], folder: Path, images: list[str]) -> str:
    m = clip["metrics"]
    rows = [["CLIP score (mean)", m["clip_score_mean"], f"+- {html.num(m['clip_score_std'])} "
             "(std over images)"],
            ["lowest / highest", m["clip_score_min"], html.num(m["clip_score_max"])]]
    chart = clip_score_histogram(clip, folder)
    images.append(chart)
    return ("<h2>CLIP score: images against their captions</h2>"
            + html.table(["metric", "value", ""], rows)
            + html.notes([f"CLIP {clip['clip']['folder']}; captions from column "
                          f"{clip['caption_column']!r}; {clip['num_generated']:,} images; "
                          f"{clip['input_description']}; cache {clip['cache']['status']}"])
            + html.image(chart, "CLIP score of each image", "plots"))


def _augmentation_section(result: dict[str, Any], folder: Path, images: list[str]) -> str:
    from galaxy_hpc.evaluate.augmentation import ARMS, plot_scores, result_from_dict

    aug = result_from_dict(result)
    real, plus = (aug.arms[arm]["mean"] for arm in ARMS)
    rows = [[name + (" (rare)" if name in aug.rare_classes else ""),
             aug.counts["real_train"].get(name, 0), aug.counts["generated"].get(name, 0),
             aug.counts["real_test"].get(name, 0),
             real["per_class"][name]["completeness"], plus["per_class"][name]["completeness"],
             real["per_class"][name]["purity"], plus["per_class"][name]["purity"]]
            for name in aug.classes]
    rows.append(["accuracy (all)", "", "", "", real["accuracy"], plus["accuracy"], "", ""])
    rows.append(["balanced accuracy", "", "", "", real["balanced_accuracy"],
                 plus["balanced_accuracy"], "", ""])
    chart = plot_scores(aug, folder / "augmentation.png").name
    images.append(chart)
    return ("<h2>Augmentation: a classifier on real vs real + generated galaxies</h2>"
            + html.notes([f"{aug.label_source} labels; {len(aug.arms['real']['seeds'])} "
                          f"seed(s), {aug.steps} steps per arm; scored on held-out real "
                          "galaxies (means over seeds)"])
            + html.table(["class", "train", "generated", "test", "completeness real",
                          "completeness +gen", "purity real", "purity +gen"], rows)
            + html.image(chart, "completeness and purity per class", "plots"))


def _read(run_dir: Path) -> dict[str, Any]:
    results = read_results(run_dir)
    if not results:
        raise ValueError(f"{run_dir} holds no evaluation results: run `galaxy-hpc evaluate ... "
                         f"--out {run_dir}` first")
    return results


def _rgb_bands(results: dict[str, Any]) -> list[int] | None:
    """The bands the FID showed as R, G, B, so the grids show the pixels it measured."""
    bands = results.get("fid", {}).get("input", {}).get("rgb_bands")
    return list(bands) if bands else None


def build_report(run_dir: str | Path, *, per_class: int = 8, generated: str | None = None,
                 baseline: str | Path | None = None, label: str = "generated",
                 baseline_label: str = "baseline") -> ReportResult:
    """RUN_DIR/report/index.html from the results of one generated store: `generated`
    (a path or checksum), or by default the store of the newest result. With `baseline`
    (another run folder, e.g. the same model untrained), its figures and galaxies are
    shown beside these (comparison.py), under `baseline_label` and `label`."""
    run_dir = Path(run_dir)
    chosen = select(run_dir, _read(run_dir), generated)
    results = chosen.results
    base = select(Path(baseline), _read(Path(baseline))) if baseline is not None else None
    folder = run_dir / "report"
    if folder.exists():
        shutil.rmtree(folder)  # no PNG of an earlier report may linger beside this one
    folder.mkdir(parents=True)
    stores = {side: store for side, store in (("real", chosen.real),
                                               ("generated", chosen.generated)) if store}
    sections, names, images, notes = [], [], [], list(chosen.notes)
    if "generated" in stores:
        covered = stores["generated"]
        sections.append(html.notes([f"This report covers the generated store {covered['path']}"
                                    f" (checksum {covered.get('checksum')})."] + notes))
    if base is not None:
        sections.append(comparison_section(results, base.results, label=label,
                                           baseline_label=baseline_label))
        names.append("comparison")
    if {"real", "generated"} <= set(stores):
        sides = ["real"] + (["baseline"] if base is not None and base.generated else []) \
            + ["generated"]
        captions = {"real": "real", "baseline": baseline_label, "generated": label}
        try:
            real, generated = (open_store(stores[s]["path"]) for s in ("real", "generated"))
            other = open_store(base.generated["path"]) if "baseline" in sides else None
        except (FileNotFoundError, ValueError) as error:
            notes.append(f"no image grids: {error}")
        else:
            grids = write_grids(real, generated, folder, per_class=per_class, baseline=other,
                                rgb_bands=_rgb_bands(results))
            images += [g[s] for g in grids for s in sides if g[s]]
            blocks = "".join(
                f"<h3>{g['class']} ("
                + ", ".join(f"{g['num_' + s]:,} {captions[s]}" for s in sides) + ")</h3>"
                f'<div class="pair">'
                + "".join(html.image(g[s], captions[s]) for s in sides if g[s])
                + "</div>" for g in grids)
            shown = html.notes([f"Per class: {', '.join(captions[s] for s in sides)}, "
                                f"{per_class} galaxies each."]) if base is not None else ""
            sections.append("<h2>Real vs generated galaxies</h2>" + shown + blocks)
            names.append("grids")
    builders = {"fid": lambda r: _fid_section(r),
                "physics": lambda r: _physics_section(r, folder, images),
                "morphology": lambda r: _morphology_section(r, folder, images),
                "morphology_fidelity": lambda r: morphology_fidelity_section(r, folder, images),
                "conditioning": lambda r: conditioning_section(r, folder, images),
                "clipscore": lambda r: _clipscore_section(r, folder, images),
                "augmentation": lambda r: _augmentation_section(r, folder, images)}
    for name, builder in builders.items():
        if name in results:
            sections.append(builder(results[name]))
            names.append(name)
    sections.append("<h2>Provenance</h2>" + "".join(
        html.provenance(f"{side} store", stores[side]) for side in ("generated", "real")
        if side in stores))
    footer = (f"galaxy-hpc {galaxy_hpc.__version__}, {time.strftime('%Y-%m-%d %H:%M:%S')}, "
              f"from {', '.join(sorted(results))} in {run_dir.resolve()}")
    title = f"Evaluation of {Path(stores['generated']['path']).name}" if "generated" in stores \
        else "Evaluation"
    page = folder / "index.html"
    page.write_text(html.page(title, sections, footer))
    covered = ({"path": stores["generated"]["path"],
                "checksum": stores["generated"].get("checksum")} if "generated" in stores
               else None)
    return ReportResult(str(page), images, names, notes, covered, chosen.left_out)
