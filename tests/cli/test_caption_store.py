"""`galaxy-hpc caption --predictor RUN STORE`: captions for a store without them, from
the fractions a (real, randomly weighted) DINOv2 vote predictor gives its galaxies, into a
new store; checked against the predictor and the captioner run in process, resumed after
a failure part-way, refused over another job's output, and the same on two MPI ranks."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from support.cli_runs import run_json
from support.predictors import random_vote_predictor
from support.stores import write_synth_store

from galaxy_hpc.cli.main import EXIT_ERROR, EXIT_OK, main

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("caption") / "cutouts.zarr"
    return write_synth_store(out, num_galaxies=40, seed=4, shard_size=16, size=32,
                             output="uint8", captions=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("caption") / "dino_run"
    random_vote_predictor(run / "predictor", head_std=0.5)
    return run


def caption(*args, capsys):
    status = main(["caption", *map(str, args), "--json"])
    return status, (json.loads(capsys.readouterr().out) if status == EXIT_OK else None)


def test_captions_and_predictions_go_into_a_new_store(store, run_dir, capsys):
    from galaxy_hpc.data.captions import Captioner
    from galaxy_hpc.data.gz2 import ANSWERS, column_name
    from galaxy_hpc.models.store_predictions import predict_store
    from galaxy_hpc.models.vote_predictor import load_vote_predictor
    from hpc.store import open_store

    source = open_store(store)
    before = source.checksum
    status, summary = caption("--predictor", run_dir, store, capsys=capsys)
    out = store.parent / "cutouts.captioned.zarr"
    assert status == EXIT_OK and summary["out"] == str(out) and summary["num_items"] == 40
    assert summary["shards_written"] == [0, 1, 2] and not summary["already_complete"]
    made = open_store(out)
    assert made.checksum == summary["checksum"] and open_store(store).checksum == before
    assert np.array_equal(made.read_images(), source.read_images())
    assert list(made.read_column("id")) == list(source.read_column("id"))
    names = [f"pred_{column_name(a)}" for a in ANSWERS]
    got = np.stack([made.read_column(n) for n in names], axis=1)
    expected = predict_store(load_vote_predictor(run_dir / "predictor"), source, batch_size=7)
    assert np.allclose(got, expected, atol=1e-6) and got[:, 0].std() > 1e-3
    assert list(made.read_column("caption")) == Captioner().captions(got)
    assert made.column_info("caption")["description"].startswith("GalaxySD-style caption")
    assert made.attrs["captioned_from"] == {"store": str(source.path), "checksum": before}

    again, summary = caption("--predictor", run_dir, store, capsys=capsys)
    assert again == EXIT_OK and summary["already_complete"] and summary["shards_written"] == []


def test_a_failed_run_resumes_and_other_settings_are_refused(store, run_dir, tmp_path,
                                                             capsys, monkeypatch):
    from hpc.store import open_store
    from support.writer_faults import node_lost_after_one_shard

    out = tmp_path / "c.h5"
    with node_lost_after_one_shard(monkeypatch):
        main(["caption", "--predictor", str(run_dir), str(store), "--out", str(out),
              "--survey", "hsc"])
    status, summary = caption("--predictor", run_dir, store, "--out", out, "--survey", "hsc",
                              capsys=capsys)
    assert status == EXIT_OK and summary["shards_written"] == [1, 2]
    captions = open_store(out).read_column("caption")
    assert len(captions) == 40 and all(c.startswith("hsc") for c in captions)

    status, _ = caption("--predictor", run_dir, store, "--out", out, "--threshold", "0.6",
                        capsys=capsys)
    err = capsys.readouterr().err
    assert status == EXIT_ERROR and "other inputs or settings" in err and "threshold" in err
    status, _ = caption("--predictor", run_dir, out, "--out", tmp_path / "twice.zarr",
                        capsys=capsys)
    assert status == EXIT_ERROR and "--column" in capsys.readouterr().err


@pytest.mark.mpi
def test_two_ranks_write_the_same_store(galaxy_hpc, mpiexec, store, run_dir, tmp_path):
    one = run_json([galaxy_hpc, "caption", "--predictor", run_dir, store, "--out",
                    tmp_path / "one.zarr", "--json"], env=ENV, timeout=300)
    two = run_json([mpiexec, "-n", "2", galaxy_hpc, "caption", "--predictor", run_dir, store,
                    "--out", tmp_path / "two.zarr", "--json"], env=ENV, timeout=300)
    assert two["num_ranks"] == 2 and one["checksum"] == two["checksum"]
