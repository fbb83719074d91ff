"""Reading GZ2-catalog and Kaggle vote tables from CSV and FITS files the tests write."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from galaxy_hpc.data import gz2
from galaxy_hpc.data.gz2 import ANSWERS, QUESTIONS, column_name
from galaxy_hpc.data.vote_table import read_vote_table

OBJIDS = [587722981736120347, 587722981736579107, 587722981741363294]


def make_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    counts = rng.integers(0, 40, size=(n, 37)).astype(float)
    counts[0, 2] = 0  # keep one galaxy fully reachable
    counts[-1, 3] = 0  # nobody saw the last one edge-on: question 9 unreached
    reach = gz2.question_reach(gz2.vote_counts_to_fractions(counts))
    for q in QUESTIONS:  # as in the real tree, nobody answers a question nobody reached
        counts[reach[:, q.number - 1] == 0, q.columns] = 0
    return counts


def GZ2_Q(number: int) -> slice:  # noqa: N802 - reads like the question name
    return QUESTIONS[number - 1].columns


def gz2_table(counts: np.ndarray, *, debiased: bool = True) -> Table:
    """A Hart16-shaped table: id, extras, then count/fraction/debiased per answer."""
    fractions = gz2.vote_counts_to_fractions(counts)
    table = Table({"dr7objid": np.array(OBJIDS[: len(counts)], dtype=np.int64),
                   "ra": np.linspace(10, 11, len(counts)),
                   "t01_smooth_or_features_count": counts[:, :3].sum(axis=1)})
    for a in ANSWERS:
        table[column_name(a, "count")] = counts[:, a.index].astype(np.int64)
        table[column_name(a, "fraction")] = np.round(fractions[:, a.index], 3)
        if debiased:  # debiased fractions need not sum to 1: a different, known vector
            table[column_name(a, "debiased")] = np.round(fractions[:, a.index] * 0.9, 3)
        table[column_name(a, "flag")] = np.zeros(len(counts), dtype=np.int64)
    return table


def kaggle_table(fractions: np.ndarray) -> Table:
    values = gz2.fractions_to_kaggle(fractions)
    table = Table({"GalaxyID": np.arange(100008, 100008 + len(fractions))})
    for a in ANSWERS:
        table[a.kaggle] = np.round(values[:, a.index], 6)
    return table


def write(table: Table, path: Path) -> Path:
    if path.name.endswith(".csv.gz"):
        with gzip.open(path, "wt") as handle:
            table.write(handle, format="ascii.csv")
    else:
        table.write(path, format="fits" if ".fit" in path.name else "ascii.csv")
    return path


@pytest.fixture
def counts() -> np.ndarray:
    return make_counts(np.random.default_rng(0), 3)


@pytest.mark.parametrize("name", ["gz2_hart16.csv", "gz2_hart16.csv.gz", "gz2.fits"])
def test_gz2_table_defaults_to_debiased(tmp_path, counts, name):
    table = read_vote_table(write(gz2_table(counts), tmp_path / name))
    assert table.naming == "gz2" and table.suffix == "debiased" and len(table) == 3
    assert table.ids.tolist() == OBJIDS  # 64-bit object ids survive
    assert np.allclose(table.fractions, gz2.vote_counts_to_fractions(counts), atol=2e-3)
    gz2.check_fractions(table.fractions)
    assert table.fractions[-1, GZ2_Q(9)].sum() == 0  # unreached stays 0
    assert np.array_equal(table.counts, counts.astype(np.int64))


def test_gz2_table_without_debiased_uses_fraction(tmp_path, counts):
    table = read_vote_table(write(gz2_table(counts, debiased=False), tmp_path / "w13.csv"))
    assert table.suffix == "fraction"
    assert np.allclose(table.fractions, gz2.vote_counts_to_fractions(counts), atol=2e-3)


@pytest.mark.parametrize("suffix", ["fraction", "count"])
def test_gz2_suffix_is_configurable(tmp_path, counts, suffix):
    table = read_vote_table(write(gz2_table(counts), tmp_path / "v.csv"), suffix=suffix)
    assert table.suffix == suffix
    assert np.allclose(table.fractions, gz2.vote_counts_to_fractions(counts), atol=2e-3)


def test_gz2_fits_with_upper_case_columns(tmp_path, counts):
    source = gz2_table(counts)
    source.rename_columns(source.colnames, [n.upper() for n in source.colnames])
    table = read_vote_table(write(source, tmp_path / "upper.fits"))
    assert table.suffix == "debiased" and table.ids.tolist() == OBJIDS


@pytest.mark.parametrize("name", ["training_solutions_rev1.csv", "kaggle.fits"])
def test_kaggle_table_is_converted_to_fractions(tmp_path, counts, name):
    fractions = gz2.vote_counts_to_fractions(counts)
    table = read_vote_table(write(kaggle_table(fractions), tmp_path / name))
    assert table.naming == "kaggle" and table.suffix is None and table.counts is None
    assert table.ids.tolist() == [100008, 100009, 100010]
    # Kaggle rounds to 6 decimals: deep questions (small weights) lose a little precision.
    assert np.allclose(table.fractions, fractions, atol=1e-4)


def test_id_column_can_be_named(tmp_path, counts):
    source = gz2_table(counts)
    source.rename_column("dr7objid", "specobjid")
    path = write(source, tmp_path / "v.csv")
    with pytest.raises(ValueError, match="v.csv.*no id column.*id_column"):
        read_vote_table(path)
    assert read_vote_table(path, id_column="SPECOBJID").ids.tolist() == OBJIDS


def test_missing_answer_column_is_named(tmp_path, counts):
    source = gz2_table(counts)
    source.remove_column("t08_odd_feature_a38_dust_lane_debiased")
    path = write(source, tmp_path / "broken.csv")
    with pytest.raises(ValueError, match="broken.csv.*t08_odd_feature_a38_dust_lane_debiased"):
        read_vote_table(path)
    kaggle = kaggle_table(gz2.vote_counts_to_fractions(counts))
    kaggle.remove_column("Class11.6")
    with pytest.raises(ValueError, match="kaggle.fits.*Class11.6"):
        read_vote_table(write(kaggle, tmp_path / "kaggle.fits"))


def test_table_without_vote_columns(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("dr7objid,ra\n1,2.0\n")
    with pytest.raises(ValueError, match="plain.csv.*neither Kaggle"):
        read_vote_table(path)


def test_bad_inputs(tmp_path, counts):
    with pytest.raises(FileNotFoundError):
        read_vote_table(tmp_path / "absent.csv")
    (tmp_path / "votes.txt").write_text("x")
    with pytest.raises(ValueError, match="votes.txt.*CSV"):
        read_vote_table(tmp_path / "votes.txt")
    path = write(gz2_table(counts), tmp_path / "v.csv")
    with pytest.raises(ValueError, match="flag"):
        read_vote_table(path, suffix="flag")
    kaggle = write(kaggle_table(gz2.vote_counts_to_fractions(counts)), tmp_path / "k.csv")
    with pytest.raises(ValueError, match="k.csv is a Kaggle table"):
        read_vote_table(kaggle, suffix="fraction")
    negative = gz2_table(counts)
    negative["t02_edgeon_a04_yes_debiased"][0] = -0.5
    with pytest.raises(ValueError, match="neg.csv.*t02_edgeon_a04_yes_debiased.*negative"):
        read_vote_table(write(negative, tmp_path / "neg.csv"))
    empty = gz2_table(counts)[:0]
    with pytest.raises(ValueError, match="no rows"):
        read_vote_table(write(empty, tmp_path / "empty.fits"))


def test_text_in_a_vote_column(tmp_path, counts):
    path = write(gz2_table(counts), tmp_path / "v.csv")
    rows = list(csv.reader(path.open()))
    rows[1][rows[0].index("t03_bar_a06_bar_debiased")] = "lots"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(ValueError, match="t03_bar_a06_bar_debiased.*not numeric"):
        read_vote_table(path)


def test_empty_cells_count_as_no_votes(tmp_path, counts):
    path = write(gz2_table(counts), tmp_path / "v.csv")
    rows = list(csv.reader(path.open()))
    for name in ("t09_bulge_shape_a25_rounded_debiased", "t09_bulge_shape_a26_boxy_debiased",
                 "t09_bulge_shape_a27_no_bulge_debiased"):
        rows[1][rows[0].index(name)] = ""
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    table = read_vote_table(path)
    assert table.fractions[0, GZ2_Q(9)].sum() == 0 and not np.isnan(table.fractions).any()
