"""`galaxy-hpc caption`, run through the real entry point on tables the tests write."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from astropy.table import Table
from support.votes import votes

from galaxy_hpc.cli.caption_cmd import default_out
from galaxy_hpc.cli.main import main
from galaxy_hpc.data.gz2 import ANSWERS, column_name, fractions_to_kaggle

SPIRAL = "sdss, spiral galaxy, obvious bulge prominence, tightly wound spiral arms, 2 spiral arms"
CIGAR = "sdss, smooth, cigar shaped galaxy"


@pytest.fixture
def galaxies() -> np.ndarray:
    spiral = votes("a02", "a05", "a07", "a08", "a28", "a32", "a12", "a15")
    cigar = votes("a01", "a18", "a15")
    return np.array([spiral, cigar, cigar, spiral, cigar])


def write_gz2_csv(path, fractions):
    table = Table({"dr7objid": np.arange(587722981736120000, 587722981736120000 + len(fractions))})
    for a in ANSWERS:
        table[column_name(a, "fraction")] = fractions[:, a.index]
    table.write(path, format="ascii.csv")
    return path


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_caption_writes_csv_beside_the_votes(tmp_path, galaxies, capsys):
    votes = write_gz2_csv(tmp_path / "gz2_hart16.csv", galaxies)
    assert main(["caption", str(votes)]) == 0
    out = tmp_path / "gz2_hart16.captions.csv"
    rows = read_rows(out)
    assert rows[0] == ["id", "caption"]
    assert rows[1] == ["587722981736120000", SPIRAL]
    assert [r[1] for r in rows[1:]] == [SPIRAL, CIGAR, CIGAR, SPIRAL, CIGAR]
    line = capsys.readouterr().out.strip()
    assert "\n" not in line
    assert line.startswith("captioned 5 galaxies (gz2, fraction)") and str(out) in line
    assert line.index(CIGAR) < line.index(SPIRAL) and "x3" in line and "x2" in line


def test_caption_json_summary_and_options(tmp_path, galaxies, capsys):
    table = Table({"GalaxyID": np.arange(100008, 100013)})
    kaggle = fractions_to_kaggle(galaxies)
    for a in ANSWERS:
        table[a.kaggle] = kaggle[:, a.index]
    votes = tmp_path / "solutions.fits"
    table.write(votes)
    out = tmp_path / "sub" / "caps.csv"
    assert main(["caption", str(votes), "--out", str(out), "--survey", "gz2",
                 "--threshold", "0.9", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_captioned"] == 5 and summary["out"] == str(out)
    assert summary["naming"] == "kaggle" and summary["suffix"] is None
    # At 0.9 no answer counts at Q1 (0.8 votes): the caption is the prefix alone.
    assert summary["most_common"] == [{"caption": "gz2", "count": 5}]
    assert read_rows(out)[1] == ["100008", "gz2"]


def test_caption_errors_are_one_line(tmp_path, galaxies, capsys):
    votes = write_gz2_csv(tmp_path / "votes.csv", galaxies)
    assert main(["caption", str(votes), "--threshold", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("galaxy-hpc caption: error:") and "threshold" in err
    assert main(["caption", str(tmp_path / "missing.csv")]) == 1
    assert "missing.csv" in capsys.readouterr().err
    assert main(["caption", str(votes), "--suffix", "debiased"]) == 1
    assert "t01_smooth_or_features_a01_smooth_debiased" in capsys.readouterr().err
    assert not (tmp_path / "votes.captions.csv").exists()


@pytest.mark.parametrize("name, expected", [
    ("gz2_hart16.csv.gz", "gz2_hart16.captions.csv"),
    ("gz2.hart16.FITS", "gz2.hart16.captions.csv"),
    ("votes.fit.gz", "votes.captions.csv"), ("votes", "votes.captions.csv")])
def test_default_out(tmp_path, name, expected):
    assert default_out(tmp_path / name) == tmp_path / expected


def test_caption_is_listed_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "caption" in capsys.readouterr().out
