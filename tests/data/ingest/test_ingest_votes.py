"""Galaxy Zoo 2 votes (GZ2 catalog or Kaggle naming) joined by id to image files."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from ingest_helpers import ingest, reasons, rgb, write_image

from galaxy_hpc.data import gz2
from galaxy_hpc.data.captions import CaptionConfig, Captioner
from galaxy_hpc.data.gz2 import ANSWERS, column_name
from galaxy_hpc.data.vote_table import read_vote_table

FRACTIONS = [column_name(a, "fraction") for a in ANSWERS]
OBJIDS = [587722981736120347, 587722981736579107, 587722981741363294, 587722981741625428,
          587722981742018751]


def fractions_of(n: int, seed: int = 0) -> np.ndarray:
    counts = np.random.default_rng(seed).integers(0, 40, size=(n, 37)).astype(float)
    counts[:, 0] += 60 * (np.arange(n) % 2)  # every other galaxy clearly smooth
    return gz2.vote_counts_to_fractions(counts)


def gz2_csv(path, ids, fractions):
    table = Table({"dr7objid": np.array(ids, dtype=np.int64)})
    for a in ANSWERS:
        table[column_name(a, "fraction")] = np.round(fractions[:, a.index], 3)
        table[column_name(a, "debiased")] = np.round(fractions[:, a.index] * 0.8, 3)
    table.write(path, format="ascii.csv")
    return path


@pytest.mark.parametrize("backend", ["zarr", "hdf5"])
def test_gz2_catalog_join(tmp_path, backend):
    ids = OBJIDS + [OBJIDS[1]]  # the last row repeats an id
    votes = gz2_csv(tmp_path / "gz2_hart16.csv", ids, fractions_of(len(ids)))
    images = tmp_path / "images"
    for objid in OBJIDS[:4]:  # the fifth galaxy has no image
        write_image(images / f"{objid}.jpg", rgb(64, 64, objid % 1000))
    write_image(images / "123.jpg", rgb(64, 64, 5))  # an image with no vote row
    summary, store, rejects = ingest(tmp_path, images, backend=backend, size=32,
                                     votes={"table": str(votes)})
    assert summary.kind == "votes" and summary.num_ingested == 4 and summary.exit_code == 3
    assert list(store.read_column("id")) == [str(i) for i in OBJIDS[:4]]
    assert reasons(rejects) == {f"{OBJIDS[4]}.jpg": "no_image", "123.jpg": "no_vote_row",
                                "gz2_hart16.csv#row6": "duplicate_id"}
    expected = read_vote_table(votes, suffix="fraction").fractions[:4]
    got = np.stack([store.read_column(name) for name in FRACTIONS], axis=1)
    np.testing.assert_array_equal(got, expected)
    assert list(store.read_column("caption")) == Captioner().captions(expected)
    assert store.read_column("caption")[1].startswith("sdss, smooth")
    assert summary.notes["votes_naming"] == "gz2" and summary.notes["votes_suffix"] == "fraction"


def test_kaggle_join_with_subfolder_pattern_and_options(tmp_path):
    fractions = fractions_of(3, seed=1)
    table = Table({"GalaxyID": np.array([100008, 100023, 100053])})
    kaggle = gz2.fractions_to_kaggle(fractions)
    for a in ANSWERS:
        table[a.kaggle] = np.round(kaggle[:, a.index], 6)
    votes = tmp_path / "training_solutions_rev1.csv"
    table.write(votes, format="ascii.csv")
    for galaxy_id in (100008, 100023, 100053):
        write_image(tmp_path / "kaggle" / "images_training_rev1" / f"{galaxy_id}.jpg",
                    rgb(80, 80, galaxy_id % 97))
    summary, store, rejects = ingest(
        tmp_path, tmp_path / "kaggle", size=32,
        votes={"table": str(votes), "pattern": "images_training_rev1/{id}.jpg",
               "survey": "kaggle"})
    assert summary.num_ingested == 3 and rejects == []
    assert list(store.read_column("id")) == ["100008", "100023", "100053"]
    got = np.stack([store.read_column(name) for name in FRACTIONS], axis=1)
    np.testing.assert_allclose(got, read_vote_table(votes).fractions)
    # cumulative -> per question (rounding to 6 decimals blurs only the deep questions)
    np.testing.assert_allclose(got[:, :3], fractions[:, :3], atol=1e-5)
    assert list(store.read_column("caption")) == Captioner(
        CaptionConfig(survey="kaggle")).captions(got)


def test_debiased_choice_no_captions_and_ignored_rows(tmp_path):
    votes = gz2_csv(tmp_path / "gz2.csv", OBJIDS, fractions_of(5))
    for objid in OBJIDS[:2]:
        write_image(tmp_path / "img" / f"{objid}.jpg", rgb(48, 48, 1))
    summary, store, rejects = ingest(
        tmp_path, tmp_path / "img", size=32, captions=False,
        votes={"table": str(votes), "suffix": "debiased", "unmatched_votes": "ignore"})
    assert summary.exit_code == 0 and rejects == [] and "caption" not in store.columns
    assert summary.notes["vote_rows_without_image_ignored"] == 3
    expected = read_vote_table(votes, suffix="debiased").fractions[:2]
    np.testing.assert_array_equal(store.read_column(FRACTIONS[0]), expected[:, 0])


def test_gz2_counts_become_store_columns_the_dirichlet_loss_trains_on(tmp_path):
    import torch
    from support.votes import gz2_table_with_counts, tree_counts

    from galaxy_hpc.models.dino.targets import read_targets
    from galaxy_hpc.models.dino.tree import dirichlet_multinomial_nll

    counts = tree_counts(fractions_of(4, seed=2), num_volunteers=44)
    votes = tmp_path / "gz2_hart16.csv"
    gz2_table_with_counts(OBJIDS[:4], counts).write(votes, format="ascii.csv")
    for objid in OBJIDS[:4]:
        write_image(tmp_path / "img" / f"{objid}.jpg", rgb(48, 48, objid % 100))
    summary, store, rejects = ingest(tmp_path, tmp_path / "img", size=32,
                                     votes={"table": str(votes)})
    assert summary.exit_code == 0 and rejects == [] and summary.notes["vote_counts"] is True
    names = [column_name(a, "count") for a in ANSWERS]
    assert {store.spec.columns[n] for n in names} == {"int64"}
    np.testing.assert_array_equal(np.stack([store.read_column(n) for n in names], axis=1),
                                  counts)

    targets = read_targets(store, suffix="fraction", loss="auto")
    assert targets.loss == "dirichlet_multinomial"
    np.testing.assert_array_equal(targets.counts, counts)
    # The loss reads the counts: concentrations that follow them beat reversed ones.
    batch = torch.from_numpy(targets.counts)
    following = dirichlet_multinomial_nll(torch.log(batch + 1.0), batch)
    reversed_ = dirichlet_multinomial_nll(torch.log(batch.flip(1) + 1.0), batch)
    assert torch.isfinite(following).all() and (following < reversed_).all()


def test_counts_can_be_left_out(tmp_path):
    from support.votes import gz2_table_with_counts, tree_counts

    votes = tmp_path / "gz2.fits"
    gz2_table_with_counts(OBJIDS[:2], tree_counts(fractions_of(2), 30)).write(votes)
    for objid in OBJIDS[:2]:
        write_image(tmp_path / "img" / f"{objid}.jpg", rgb(48, 48, 3))
    summary, store, _ = ingest(tmp_path, tmp_path / "img", size=32,
                               votes={"table": str(votes), "counts": False})
    assert summary.notes["vote_counts"] is False
    assert not any(name.endswith("_count") for name in store.columns)
