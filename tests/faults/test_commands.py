"""Each command that reads a store, run as users run it, on each damage of each backend:
it must exit non-zero and name the store and the damaged file. Nothing exits 0 on
damaged data it reads.

Stores: 24 synthetic galaxies (32 px, uint8, captions and GZ2 votes) in shards of 8,
drawn once; each test damages its own copy (damage_kit.py). `store info` checks files
without decoding data, so a changed byte inside a chunk is the one damage it cannot see:
it says the store was never verified, and once `store verify` has found the damage,
`info` fails too (test_info_after_verify_knows_a_flip). `store info` and `store verify`
run on every damage of both backends; the heavier commands (evaluate fid, train,
predict, caption --predictor, a rerun of synth) on a chosen set by default and on all
with HPC_FAULTS_ALL=1 (see `quick`).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from damage_kit import KINDS, NUM_ITEMS, SHARD_SIZE, copy_store, damage
from support.cli_runs import GALAXY_HPC, run_command
from support.predictors import random_vote_predictor
from support.stores import write_synth_store

REPO = Path(__file__).resolve().parents[2]
EVALUATE = REPO / "tests" / "evaluate"
ENV = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(EVALUATE), os.environ.get("PYTHONPATH", "")])}
BACKENDS = {"zarr": ".zarr", "hdf5": ".h5"}
VOTE = "t01_smooth_or_features_a01_smooth_fraction"  # a column training reads
TINY_DINO = str(REPO / "configs" / "train" / "dino_head_tiny.yaml")


def synth(out: Path, seed: int, num: int = NUM_ITEMS) -> Path:
    return write_synth_store(out, num_galaxies=num, seed=seed, shard_size=SHARD_SIZE, size=32,
                             output="uint8")


@pytest.fixture(scope="module")
def galaxies(tmp_path_factory):
    root = tmp_path_factory.mktemp("fault-stores")
    stores = {backend: synth(root / f"galaxies{suffix}", 3) for backend, suffix in BACKENDS.items()}
    stores["other"] = synth(root / "other.zarr", 4, 16)
    return stores


@pytest.fixture
def damaged(galaxies, tmp_path):
    """damaged(backend, kind) -> (store path, damaged file relative to it)."""

    def make(backend: str, kind: str):
        store = copy_store(galaxies[backend], tmp_path / f"store{BACKENDS[backend]}")
        return store, damage(store, kind, column=VOTE)

    return make


def run(*args, cwd) -> subprocess.CompletedProcess:
    """The command as users run it (with a torch.distributed port of its own)."""
    return run_command([GALAXY_HPC, *args], cwd=cwd, env=ENV, timeout=300)


def assert_fails_naming(done, store, file):
    out = done.stdout + done.stderr
    assert done.returncode != 0, f"exit 0 on a damaged store:\n{out[-3000:]}"
    assert f"{store} is damaged" in out and file in out, out[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


CASES = [(backend, kind) for backend in BACKENDS for kind in KINDS]
FULL = os.environ.get("HPC_FAULTS_ALL") == "1"


def quick(cases, chosen):
    """Every case; those not `chosen` run only with HPC_FAULTS_ALL=1. The read path under
    each command is the same for every damage (test_store_reads.py runs each damage
    through each read path in process); the chosen ones meet every kind of check (stat,
    chunk index, chunk checksum, HDF5 open, store id, column) through each command, so
    that the suite stays within ~2 minutes on 2 cores (a train run costs ~7-20 s)."""
    later = pytest.mark.skipif(not FULL, reason="set HPC_FAULTS_ALL=1 for every combination")
    return [case if case in chosen else pytest.param(*case, marks=later) for case in cases]


@pytest.mark.parametrize("backend, kind", CASES)
def test_store_info(damaged, backend, kind):
    store, file = damaged(backend, kind)
    done = run("store", "info", store, cwd=store.parent)
    if kind == "flip":  # no file check sees it; store verify does (next test)
        assert done.returncode == 0 and "verified  not since it was written" in done.stdout
        return
    assert_fails_naming(done, store, file)


@pytest.mark.parametrize("backend, kind", CASES)
def test_store_verify(damaged, backend, kind):
    store, file = damaged(backend, kind)
    done = run("store", "verify", store, "--json", cwd=store.parent)
    assert_fails_naming(done, store, file)
    report = json.loads(done.stdout)
    assert not report["ok"] and report["damaged"][0]["file"] == file
    if kind == "flip":
        assert report["num_damaged_items"] == 1
    elif not (backend == "hdf5" and kind == "column"):  # an HDF5 column is one dataset
        assert (report["damaged"][0]["start"], report["damaged"][0]["stop"]) == (
            SHARD_SIZE, 2 * SHARD_SIZE)


@pytest.mark.parametrize("backend", BACKENDS)
def test_info_after_verify_knows_a_flip(damaged, backend):
    store, file = damaged(backend, "flip")
    assert run("store", "verify", store, cwd=store.parent).returncode == 1
    done = run("store", "info", store, cwd=store.parent)
    assert done.returncode == 1 and "1 damaged item(s)" in done.stdout
    assert f"{store} is damaged: store verify found 1 damaged item(s)" in done.stderr


@pytest.mark.parametrize("backend, kind", quick(
    [c for c in CASES if c[1] != "column"],
    {("zarr", "delete"), ("zarr", "truncate"), ("zarr", "flip"), ("hdf5", "empty"),
     ("hdf5", "flip")}))
def test_evaluate_fid(damaged, galaxies, backend, kind):
    """FID reads every image of both stores (it reads no columns)."""
    store, file = damaged(backend, kind)
    done = run("evaluate", "fid", galaxies["other"], store, "--extractor", "tiny-test",
               "--extractor-module", "eval_tiny_extractor", "--metrics", "fid",
               "--batch-size", "8", "--json", cwd=store.parent)
    assert_fails_naming(done, store, file)


@pytest.mark.mpi
def test_evaluate_fid_on_two_ranks_ends_when_one_rank_meets_damage(damaged, galaxies, mpiexec,
                                                                    galaxy_hpc):
    """The damaged item is read by one rank: that rank's error ends the job (the other
    would wait in its all-reduce, and the failed one in MPI_Finalize, for ever), and the
    terminal names the damage whichever rank met it."""
    store, file = damaged("zarr", "flip")
    done = subprocess.run(
        [mpiexec, "-n", "2", galaxy_hpc, "evaluate", "fid", galaxies["other"], store,
         "--extractor", "tiny-test", "--extractor-module", "eval_tiny_extractor",
         "--metrics", "fid", "--batch-size", "8"],
        capture_output=True, text=True, env=ENV, cwd=store.parent, timeout=240)
    assert_fails_naming(done, store, file)


@pytest.mark.parametrize("backend, kind", quick(
    CASES, {("zarr", "flip"), ("zarr", "column"), ("hdf5", "delete"), ("hdf5", "truncate"),
            ("hdf5", "column")}))
def test_train(damaged, backend, kind):
    """One epoch of the tiny DINOv2 head reads every training image and the vote columns:
    the shared split holds out 2 of the 24 (items 13 and 20, not the flipped one), so 2
    steps of 11 read the other 22 (with drop_last, batches of 8 would leave 6 unread).
    Damage met at the first batch costs a whole start-up (DeepSpeed included): one such
    case per backend by default."""
    from galaxy_hpc.data.split import Split
    from damage_kit import FLIPPED

    held_out = Split.of(NUM_ITEMS, fraction=0.1, seed=0).heldout  # dino's defaults
    assert len(held_out) == 2 and FLIPPED not in held_out
    store, file = damaged(backend, kind)
    done = run("train", TINY_DINO, f"data.store={store}", f"run.output_dir={store}.run",
               "run.max_steps=2", "run.micro_batch_size=11", "--json", cwd=store.parent)
    assert_fails_naming(done, store, file)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    """A DINOv2 vote predictor folder with random weights."""
    return random_vote_predictor(tmp_path_factory.mktemp("fault-predictor") / "predictor")


@pytest.mark.parametrize("backend, kind", quick(
    [c for c in CASES if c[1] != "column"], {("zarr", "flip"), ("hdf5", "truncate")}))
def test_predict(damaged, predictor, backend, kind):
    store, file = damaged(backend, kind)
    done = run("predict", predictor, store, "--out", store.parent / "pred.fits", "--json",
               cwd=store.parent)
    assert_fails_naming(done, store, file)
    assert not (store.parent / "pred.fits").exists()


@pytest.mark.parametrize("backend, kind", quick(
    CASES, {("zarr", "flip"), ("zarr", "column"), ("hdf5", "truncate")}))
def test_caption_with_predictor(damaged, predictor, backend, kind):
    """It copies every column and image into the new store: each damage stops it."""
    from hpc.store import open_store

    store, file = damaged(backend, kind)
    out = store.parent / "captioned.zarr"
    done = run("caption", "--predictor", predictor, store, "--column", "auto_caption", "--out",
               out, "--json", cwd=store.parent)
    assert_fails_naming(done, store, file)
    with pytest.raises((ValueError, FileNotFoundError)):
        open_store(out)  # never finalized: it does not read as data


@pytest.mark.parametrize("backend, kind", quick(
    [c for c in CASES if c[1] != "flip" and c != ("hdf5", "column")],
    {("zarr", "delete"), ("zarr", "column"), ("hdf5", "truncate")}))
def test_synth_rerun(damaged, backend, kind):
    """A rerun of the command that wrote the store (as generate and ingest resume) checks
    the shard files already written before it trusts them (not their bytes: a flip is
    for readers; nor the HDF5 master, which a finished rerun does not read)."""
    store, file = damaged(backend, kind)
    done = run("synth", "--n", NUM_ITEMS, "--size", 32, "--shard-size", SHARD_SIZE,
               "--seed", 3, "--out", store, cwd=store.parent)
    assert_fails_naming(done, store, file)
