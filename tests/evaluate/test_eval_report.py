"""`evaluate all` from a config (the `evaluate` job) and the HTML report it ends with: every
section present, every picture it references written beside it, the provenance shown."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

import eval_tiny_extractor
from galaxy_hpc.cli.main import main


@pytest.fixture(scope="module")
def run_dir(evaluated_run):
    return evaluated_run


def test_evaluate_all_writes_every_result_and_the_report(run_dir):
    names = sorted(p.name for p in run_dir.glob("*.json"))
    assert names == ["clipscore.json", "conditioning.json", "fid.json", "morphology.json",
                     "morphology_fidelity.json", "physics.json"]
    assert (run_dir / "report" / "index.html").is_file()


def test_report_references_only_pictures_that_exist(run_dir, capsys):
    assert main(["report", str(run_dir), "--per-class", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    page = run_dir / "report" / "index.html"
    assert result["html"] == str(page)
    assert result["sections"] == ["grids", "fid", "physics", "morphology",
                                  "morphology_fidelity", "conditioning", "clipscore"]
    html = page.read_text()
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert sorted(sources) == sorted(result["images"]) and len(sources) >= 7 + 1 + 2
    for source in sources:
        assert "/" not in source and ":" not in source  # beside the page: opens from file://
        with Image.open(page.parent / source) as picture:
            assert picture.format == "PNG" and picture.width > 50
    assert sorted(p.name for p in page.parent.glob("*.png")) == sorted(sources)
    assert "http" not in html.replace("http-equiv", "")  # nothing fetched from a network


def test_report_shows_metrics_counts_and_provenance(run_dir):
    html = (run_dir / "report" / "index.html").read_text()
    fid = json.loads((run_dir / "fid.json").read_text())
    assert eval_tiny_extractor.NAME in html and "64 real, 48 generated" in html
    assert f"{fid['metrics']['fid']:.4g}" in html
    assert "float32 flux -&gt; asinh stretch" in html  # what was done to the pixels
    assert "galaxy-hpc synth (GalSim)" in html and fid["generated"]["checksum"] in html
    for parameter in ("half_light_radius", "concentration", "gini", "m20"):
        assert f'src="physics-{parameter}.png"' in html
    assert "Q11 arms_number" in html and "log_stellar_mass" in html
    # Morphology fidelity ran with morphology's predictor, its floor from the real store.
    fidelity = json.loads((run_dir / "morphology_fidelity.json").read_text())
    assert fidelity["predictor"] == json.loads((run_dir / "morphology.json").read_text())[
        "predictor"] and fidelity["floor_galaxies"]["num"] == 64
    assert "against the predictor's floor</h2>" in html and fidelity["verdict"] in html
    clip = json.loads((run_dir / "clipscore.json").read_text())
    assert clip["num_generated"] == 48 and 'src="clipscore.png"' in html
    assert f"{clip['metrics']['clip_score_mean']:.4g}" in html


def test_report_of_an_empty_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "holds no evaluation results" in capsys.readouterr().err


def test_a_folder_mixing_catalogs_is_reported_one_catalog_at_a_time(run_dir, float_stores,
                                                                    tmp_path, capsys):
    """Another catalog's conditioning evaluated into a copy of the run folder (it replaces
    conditioning.json; fid, physics, morphology and clipscore stay those of the first
    catalog): the
    report covers the newest result's catalog, names it, warns and lists what it left out;
    --generated reports on the other."""
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for path in run_dir.glob("*.json"):
        shutil.copy2(path, mixed / path.name)
    other = float_stores["real"]  # evaluated as if it were a second generated catalog
    assert main(["evaluate", "conditioning", str(other), "--out", str(mixed), "--json"]) == 0
    capsys.readouterr()

    assert main(["report", str(mixed), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert Path(result["generated"]["path"]) == other.resolve()
    assert result["sections"] == ["conditioning"]
    assert sorted(entry.split(" ")[0] for entry in result["left_out"]) == \
        ["clipscore", "fid", "morphology", "morphology_fidelity", "physics"]
    assert all(str(float_stores["generated"].resolve()) in e for e in result["left_out"])
    assert "galaxy-hpc report: warning:" in captured.err and "mixes results of 2" in captured.err
    page = Path(result["html"]).read_text()
    assert f"<title>Evaluation of {other.name}</title>" in page
    assert f"This report covers the generated store {other.resolve()}" in page
    assert "Distribution metrics" not in page  # the other catalog's FID is not shown

    generated = float_stores["generated"]
    assert main(["report", str(mixed), "--generated", str(generated)]) == 0
    out = capsys.readouterr().out
    assert f"covers generated store {generated.resolve()}" in out
    assert "leaves out conditioning (of" in out
    page = (mixed / "report" / "index.html").read_text()
    assert f"<title>Evaluation of {generated.name}</title>" in page
    fid = json.loads((mixed / "fid.json").read_text())
    assert f"{fid['metrics']['fid']:.4g}" in page and "Conditioning" not in page


def test_report_of_one_catalog_names_it_and_warns_of_nothing(run_dir, capsys):
    assert main(["report", str(run_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    fid = json.loads((run_dir / "fid.json").read_text())
    assert result["generated"] == {"path": fid["generated"]["path"],
                                   "checksum": fid["generated"]["checksum"]}
    assert result["left_out"] == [] and not any(n.startswith("warning") for n in result["notes"])
