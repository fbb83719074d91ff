"""`galaxy-hpc demo` end to end (smaller counts than the command's own, same steps): the
report shows what training bought. The page is read with the standard library's HTML
parser: the comparison table holds the trained and the untrained GAN's FID and
conditioning figures, the trained FID is the lower, and the grids are pictures, not
blank tiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support.html_page import parse


@pytest.mark.demo
@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~5 min on 2 idle cores; a shared machine takes several times that
def test_the_demo_report_shows_what_training_bought(tmp_path):
    from galaxy_hpc.demo import run_demo

    lines: list[str] = []
    ctx = run_demo(tmp_path / "demo", num_tasks=2, echo=lines.append, num_galaxies=800,
                   gan_steps=150, train_steps=20, num_objects=320)
    report = Path(str(ctx.results["report"]))
    assert lines[-1].startswith("demo finished") and str(report) in lines[-1]
    page = parse(report)
    heading = next(h for h in page.tables if h.startswith("What training bought"))
    header, *rows = page.tables[heading]
    assert header == ["figure", "untrained", "trained", "real data"]
    figures = {row[0]: row[1:] for row in rows}
    untrained_fid, trained_fid, _ = (figures["FID (lower is better)"])
    assert float(trained_fid) < float(untrained_fid)
    for name in ("log_flux", "half_light_radius"):
        assert all(" cells within noise" in v for v in figures[f"fidelity of {name}"][:2])
    trend = figures["rho log_stellar_mass vs total_flux"]
    assert all(-1 <= float(v) <= 1 for v in trend)
    assert any(name.strip().startswith("redshift") for name in figures)  # per-bin rows
    assert page.captions[:3] == ["real", "untrained", "trained"]
    for side in ("real", "baseline", "generated"):
        tile = np.asarray(Image.open(report.parent / f"grid-0-{side}.png").convert("L"))
        assert tile.std() > 5 and tile.max() > 100  # bright galaxies on a dark sky
