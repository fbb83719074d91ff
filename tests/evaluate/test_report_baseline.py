"""`galaxy-hpc report RUN_DIR --baseline BASE_DIR` on 2-band flux stores: the comparison
table puts the two catalogs' FID and conditioning figures side by side, the grids show
real / baseline / generated, and a 2-band store needs no --rgb-bands. The page is read
with the standard library's HTML parser, not with the code that wrote it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import eval_tiny_extractor
from eval_stores import blob_store
from galaxy_hpc.cli.main import main
from support.html_page import parse


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two catalogs of 2-band blobs against the same real store: one drawn like it, one
    five times too bright everywhere; FID (test extractor) and conditioning of each."""
    root = tmp_path_factory.mktemp("baseline")
    real = blob_store(root / "real.zarr", 1, bands=2, per_cell=40)
    catalogs = {"good": blob_store(root / "good.zarr", 2, bands=2, per_cell=40),
                "bad": blob_store(root / "bad.zarr", 3, bands=2, per_cell=40,
                                  flux_factor={(i, j): 5.0 for i in range(3)
                                               for j in range(3)})}
    for name, store in catalogs.items():
        out = root / name
        assert main(["evaluate", "fid", str(real), str(store), "--extractor",
                     eval_tiny_extractor.NAME, "--kid-subset-size", "50", "--no-cache",
                     "--json", "--out", str(out)]) == 0
        assert main(["evaluate", "conditioning", str(store), f"real={real}",
                     "num_bootstrap=20", "num_splits=10", "--json", "--out", str(out)]) == 0
    return {"real": real, **catalogs, "good_run": root / "good", "bad_run": root / "bad"}


def test_a_report_of_2_band_flux_stores_needs_no_rgb_bands(runs, capsys):
    assert main(["report", str(runs["good_run"]), "--json"]) == 0
    page = parse(runs["good_run"] / "report" / "index.html")
    assert {"grid-0-real.png", "grid-0-generated.png"} <= set(page.images)
    assert page.captions[:2] == ["real", "generated"]


def test_the_baseline_figures_stand_beside_the_run_s(runs, capsys):
    assert main(["report", str(runs["good_run"]), "--baseline", str(runs["bad_run"]),
                 "--label", "trained", "--baseline-label", "untrained", "--json"]) == 0
    page = parse(runs["good_run"] / "report" / "index.html")
    heading = next(h for h in page.tables if h.startswith("What training bought"))
    header, *rows = page.tables[heading]
    assert header == ["figure", "untrained", "trained", "real data"]
    by_name = {row[0]: row[1:] for row in rows}
    untrained_fid, trained_fid, _ = by_name["FID (lower is better)"]
    assert float(trained_fid) < float(untrained_fid)
    verdicts = by_name["fidelity of log_flux"]
    within = [int(v.split(" of ")[0]) for v in verdicts[:2]]
    assert within[1] > within[0]  # the bright catalog is off in (nearly) every cell
    trend = by_name["rho log_stellar_mass vs total_flux"]
    assert all(-1 <= float(v) <= 1 for v in trend)  # baseline, run and real all shown


def test_the_grids_show_real_baseline_and_generated_galaxies(runs):
    assert main(["report", str(runs["good_run"]), "--baseline", str(runs["bad_run"]),
                 "--label", "trained", "--baseline-label", "untrained"]) == 0
    folder = runs["good_run"] / "report"
    page = parse(folder / "index.html")
    assert page.captions[:3] == ["real", "untrained", "trained"]
    for side in ("real", "baseline", "generated"):
        assert f"grid-0-{side}.png" in page.images
        pixels = np.asarray(Image.open(folder / f"grid-0-{side}.png").convert("L"))
        assert pixels.std() > 5  # galaxies on a sky, not one flat colour
    bright, good = (np.asarray(Image.open(folder / f"grid-0-{s}.png").convert("L")).mean()
                    for s in ("baseline", "generated"))
    assert bright > good  # the same stretch for both: five times the flux shows brighter
