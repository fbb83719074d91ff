"""`evaluate clipscore`: the score transformers' own CLIP gives, on 1 and 2 ranks, cached,
and higher for an image's own caption than for another's with a CLIP fitted to them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import eval_tiny_clip
from galaxy_hpc.cli.main import main
from support.third_party import third_party

NUM_IMAGES = 40


@pytest.fixture(scope="module")
def clip_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("clipscore")
    store = eval_tiny_clip.two_kinds_store(root / "two_kinds.zarr", NUM_IMAGES, seed=5)
    swapped = eval_tiny_clip.two_kinds_store(root / "swapped.zarr", NUM_IMAGES, seed=5,
                                             swap_captions=True)
    clip = eval_tiny_clip.trained_clip(root / "clip", store)
    return {"store": store, "swapped": swapped, "clip": clip, "root": root}


def clipscore(store, clip, *extra, capsys):
    assert main(["evaluate", "clipscore", str(store), "--weights", str(clip),
                 "--batch-size", "16", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_score_is_transformers_clip_score(clip_case, capsys):
    ours = clipscore(clip_case["store"], clip_case["clip"], "--no-cache", capsys=capsys)
    theirs = third_party("clip_score_of_store.py", clip_case["store"], clip_case["clip"])
    m = ours["metrics"]
    assert ours["num_generated"] == len(theirs["scores"]) == NUM_IMAGES
    assert m["clip_score_mean"] == pytest.approx(theirs["mean"], abs=1e-4)
    assert m["clip_score_std"] == pytest.approx(theirs["std"], abs=1e-4)
    assert m["clip_score_min"] == pytest.approx(min(theirs["scores"]), abs=1e-4)
    assert m["clip_score_max"] == pytest.approx(max(theirs["scores"]), abs=1e-4)
    assert m["clip_score_std"] > 0.1  # scores that differ: the comparison means something
    assert ours["cache"]["status"] == "off"


def test_own_captions_score_higher_than_the_other_kinds(clip_case, capsys):
    own = clipscore(clip_case["store"], clip_case["clip"], "--no-cache", capsys=capsys)
    swapped = clipscore(clip_case["swapped"], clip_case["clip"], "--no-cache", capsys=capsys)
    gap = own["metrics"]["clip_score_mean"] - swapped["metrics"]["clip_score_mean"]
    assert gap > 10.0, (own["metrics"], swapped["metrics"])


def test_scores_are_cached_by_store_and_clip(clip_case, tmp_path, capsys):
    cache = ["--cache-dir", str(tmp_path / "cache")]
    first = clipscore(clip_case["store"], clip_case["clip"], *cache, capsys=capsys)
    second = clipscore(clip_case["store"], clip_case["clip"], *cache, capsys=capsys)
    assert (first["cache"]["status"], second["cache"]["status"]) == ("miss", "hit")
    assert Path(second["cache"]["file"]).is_file()
    assert second["metrics"] == first["metrics"]
    other = clipscore(clip_case["swapped"], clip_case["clip"], *cache, capsys=capsys)
    assert other["cache"]["status"] == "miss"  # another store: another entry


@pytest.mark.mpi
def test_two_ranks_give_the_scores_of_one(clip_case, mpiexec, galaxy_hpc, subprocess_env,
                                          tmp_path, capsys):
    one = clipscore(clip_case["store"], clip_case["clip"], "--no-cache", capsys=capsys)
    done = subprocess.run(
        [mpiexec, "-n", "2", galaxy_hpc, "evaluate", "clipscore", str(clip_case["store"]),
         "--weights", str(clip_case["clip"]), "--batch-size", "16", "--no-cache", "--json"],
        env=subprocess_env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads(done.stdout.strip().splitlines()[-1])
    assert (one["num_ranks"], two["num_ranks"]) == (1, 2)
    for key, value in one["metrics"].items():
        assert two["metrics"][key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    assert two["histogram"] == one["histogram"]


def test_a_store_without_captions_is_a_one_line_error(clip_case, stores, capsys):
    assert main(["evaluate", "clipscore", str(stores["generated"]), "--weights",
                 str(clip_case["clip"]), "--caption-column", "prompt"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no 'prompt' column" in err


def test_a_folder_that_is_not_clip_is_a_one_line_error(clip_case, tmp_path, capsys):
    assert main(["evaluate", "clipscore", str(clip_case["store"]), "--weights",
                 str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a CLIP folder" in err
