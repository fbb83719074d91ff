"""`galaxy-hpc predict`: a table of predicted vote fractions beside the store.

The predictor is a real DINOv2 predictor folder (a tiny Dinov2Model with random weights,
written by the same code a training run uses), so no training is needed here; the
columns are checked against the predictor run in process, one process and two MPI ranks
give the same table, and the store is left untouched.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from support.cli_runs import run_json
from support.predictors import random_vote_predictor
from support.stores import write_synth_store

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("predict") / "galaxies.zarr"
    return write_synth_store(out, num_galaxies=56, seed=9, shard_size=16, size=32, output="uint8")


@pytest.fixture(scope="module")
def predictor_dir(tmp_path_factory):
    return random_vote_predictor(tmp_path_factory.mktemp("predict") / "run" / "predictor",
                                 head_std=0.5)  # outputs that differ per galaxy


def predict(galaxy_hpc, *args, launcher=(), cwd=None):
    return run_json([*launcher, galaxy_hpc, "predict", *args, "--json"], cwd=cwd, env=ENV,
                    timeout=300)


def test_predict_writes_the_columns_beside_the_store(galaxy_hpc, store, predictor_dir):
    from astropy.table import Table

    from galaxy_hpc.data.gz2 import ANSWERS, QUESTIONS, column_name
    from galaxy_hpc.models.store_predictions import predict_store
    from galaxy_hpc.models.vote_predictor import load_vote_predictor
    from hpc.store import open_store

    before = open_store(store).checksum
    # The training run's folder works as well as its predictor/ folder.
    summary = predict(galaxy_hpc, predictor_dir.parent, store, "--batch-size", "10")
    out = store.parent / "galaxies.predictions.fits"
    assert summary["out"] == str(out) and summary["num_items"] == 56
    assert summary["num_ranks"] == 1 and summary["store_checksum"] == before
    table = Table.read(out)
    names = [f"pred_{column_name(a)}" for a in ANSWERS]
    assert table.colnames == ["index", "id", *names]
    assert table["index"].tolist() == list(range(56))
    opened = open_store(store)
    assert [str(v) for v in table["id"]] == [str(v) for v in opened.read_column("id")]
    assert table.meta["STORECHK"] == before and opened.checksum == before  # store untouched
    values = np.stack([table[n] for n in names], axis=1)
    expected = predict_store(load_vote_predictor(predictor_dir), opened, batch_size=7)
    assert np.allclose(values, expected, atol=1e-6)
    assert values[:, 0].std() > 1e-3  # not a constant
    for q in QUESTIONS:
        assert np.allclose(values[:, q.columns].sum(axis=1), 1.0, atol=1e-5)


def test_table_has_units_descriptions_and_commented_cards(galaxy_hpc, store, predictor_dir,
                                                           tmp_path):
    """Read in a process that never imports galaxy_hpc: astropy, and the header bytes."""
    from plain_readers import run_plain

    from galaxy_hpc.data.gz2 import ANSWERS, column_name

    predict(galaxy_hpc, predictor_dir, store, "--out", tmp_path / "p.fits")
    seen = run_plain("fits", tmp_path / "p.fits")
    assert seen["uncommented"] == []
    columns = seen["plain_columns"]
    assert list(columns) == ["index", "id", *(f"pred_{column_name(a)}" for a in ANSWERS)]
    for name, cards in columns.items():
        assert cards["TCOMM"] and cards == seen["astropy_header"][name], name
        assert seen["astropy"][name]["description"] == cards["TCOMM"], name
        assert cards["TUNIT"] == (None if name in ("index", "id") else ""), name
    assert columns["pred_t02_edgeon_a04_yes_fraction"]["TCOMM"] == (
        "predicted Q2 edgeon vote share for 'yes'")
    assert columns["id"]["TCOMM"] == "synth-<seed>-<index>, made from those alone"
    assert {"STORECHK", "MODEL", "PREFIX"} <= set(seen["astropy_cards"])


@pytest.mark.mpi
def test_two_ranks_give_the_same_table(galaxy_hpc, mpiexec, store, predictor_dir, tmp_path):
    from astropy.table import Table

    one = predict(galaxy_hpc, predictor_dir, store, "--out", tmp_path / "one.csv")
    two = predict(galaxy_hpc, predictor_dir, store, "--out", tmp_path / "two.csv", "--prefix",
                  "p_", launcher=(mpiexec, "-n", "2"))
    assert one["num_ranks"] == 1 and two["num_ranks"] == 2
    a, b = Table.read(tmp_path / "one.csv"), Table.read(tmp_path / "two.csv")
    assert len(a) == len(b) == 56
    pred = [c for c in a.colnames if c.startswith("pred_")]
    assert len(pred) == 37
    assert all(np.allclose(a[c], b["p_" + c[len("pred_"):]], atol=1e-6) for c in pred)


def test_predict_refuses_what_is_not_a_predictor(galaxy_hpc, store, tmp_path):
    done = subprocess.run([galaxy_hpc, "predict", str(tmp_path), str(store)],
                          capture_output=True, text=True, timeout=120, env=ENV)
    assert done.returncode == 1 and "not a vote predictor" in done.stderr
    done = subprocess.run([galaxy_hpc, "predict", str(tmp_path), str(store), "--out",
                           str(tmp_path / "x.parquet")], capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert done.returncode == 1 and ".fits or .csv" in done.stderr


def test_predict_replaces_its_own_table_and_no_one_elses(galaxy_hpc, store, predictor_dir,
                                                         tmp_path):
    """`--out catalog.fits` reads like "add columns to my catalog": the catalog survives,
    byte for byte, unless --overwrite says otherwise; a rerun replaces its own table."""
    from astropy.table import Table

    catalog = tmp_path / "catalog.fits"
    Table({"ra": [150.1, 150.2], "dec": [2.2, 2.3]}).write(catalog)
    csv = tmp_path / "mine.csv"
    csv.write_text("index,redshift\n0,0.1\n")
    for target in (catalog, csv):
        before = target.read_bytes()
        done = subprocess.run([galaxy_hpc, "predict", str(predictor_dir), str(store), "--out",
                               str(target)], capture_output=True, text=True, timeout=300,
                              env=ENV)
        assert done.returncode == 1 and "give --overwrite" in done.stderr, done.stderr
        assert target.read_bytes() == before
    for target in (tmp_path / "p.fits", tmp_path / "p.csv"):
        predict(galaxy_hpc, predictor_dir, store, "--out", target)
        first = Table.read(target)
        predict(galaxy_hpc, predictor_dir, store, "--out", target)  # its own: replaced
        assert len(Table.read(target)) == len(first) == 56
    predict(galaxy_hpc, predictor_dir, store, "--out", catalog, "--overwrite")
    assert len(Table.read(catalog)) == 56 and "pred_" in Table.read(catalog).colnames[2]


def test_predict_takes_a_hugging_face_id_from_the_local_cache(galaxy_hpc, store, tmp_path):
    """A predictor fetched with `huggingface-cli download` is named by its id, offline."""
    from support.hub import cached_repo

    snapshot = cached_repo(tmp_path / "hf" / "hub", "galaxy-lab/gz2-predictor")
    random_vote_predictor(snapshot, head_std=0.5)
    env = {**ENV, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    out = tmp_path / "p.fits"
    summary = run_json([galaxy_hpc, "predict", "galaxy-lab/gz2-predictor", store, "--out",
                        str(out), "--json"], env=env, timeout=300)
    assert summary["model"] == str(snapshot) and summary["num_items"] == 56
    missing = subprocess.run([galaxy_hpc, "predict", "galaxy-lab/other", store, "--out",
                              str(out)], env=env, capture_output=True, text=True, timeout=300)
    lines = missing.stderr.strip().splitlines()
    assert missing.returncode == 1 and "huggingface-cli download galaxy-lab/other" in lines[-1]
    assert str(tmp_path / "hf" / "hub") in lines[-1]
