"""`galaxy-hpc caption --vlm FOLDER STORE`: captions from a (tiny, randomly weighted, real)
Qwen2-VL folder and a prompt, into a new store; checked against transformers' own
generate in a process without galaxy_hpc, resumed after a failure part-way, found by its
Hub id in a local cache, and refused with one line when the folder is not a model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.hub import cached_repo
from support.stores import write_synth_store
from support.third_party import third_party
from support.tiny_vlm import tiny_qwen2_vl

from galaxy_hpc.cli.main import EXIT_ERROR, EXIT_OK, main

REPO = "tiny-org/qwen2-vl-tiny"
PROMPT = "Describe this galaxy: spiral arms, bar, bulge?"
WORDS = ["a smooth round elliptical galaxy", "a spiral galaxy with two arms and a bar",
         "an edge-on disk with a bulge", "a merger with tidal tails"] * 4


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("vlm") / "cutouts.zarr"
    return write_synth_store(out, num_galaxies=6, seed=5, shard_size=4, size=32,
                             output="uint8", captions=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("hub")
    tiny_qwen2_vl(cached_repo(cache, REPO), WORDS)
    return cache


@pytest.fixture
def vlm(cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return next((cache / f"models--{REPO.replace('/', '--')}" / "snapshots").iterdir())


def caption(*args, capsys):
    status = main(["caption", *map(str, args), "--json"])
    return status, (json.loads(capsys.readouterr().out) if status == EXIT_OK else None)


def test_captions_match_transformers_generate(store, vlm, tmp_path, capsys):
    from hpc.store import open_store

    out = tmp_path / "c.zarr"
    status, summary = caption("--vlm", REPO, store, "--out", out, "--prompt", PROMPT,
                              "--max-new-tokens", 6, "--batch-size", 2, capsys=capsys)
    assert status == EXIT_OK and summary["vlm"] == str(vlm) and summary["prompt"] == PROMPT
    assert summary["shards_written"] == [0, 1] and summary["num_items"] == 6
    made, source = open_store(out), open_store(store)
    assert np.array_equal(made.read_images(), source.read_images())
    captions = [str(c) for c in made.read_column("caption")]
    expected = third_party("vlm_captions_of_store.py", store, vlm, PROMPT, 6, 2)["captions"]
    assert captions == expected and len(set(captions)) > 1  # the images decide
    assert made.attrs["captioned_with"] == {"vlm": str(vlm), "prompt": PROMPT,
                                            "max_new_tokens": 6}
    assert PROMPT in made.column_info("caption")["description"]

    # the folder by its path is the same model: nothing left to do
    status, summary = caption("--vlm", vlm, store, "--out", out, "--prompt", PROMPT,
                              "--max-new-tokens", 6, capsys=capsys)
    assert status == EXIT_OK and summary["already_complete"]


def test_a_failed_run_resumes_and_another_prompt_is_refused(store, vlm, tmp_path, capsys,
                                                           monkeypatch):
    from hpc.store import open_store
    from support.writer_faults import node_lost_after_one_shard

    out = tmp_path / "c.h5"
    with node_lost_after_one_shard(monkeypatch) as calls:
        main(["caption", "--vlm", str(vlm), str(store), "--out", str(out),
              "--max-new-tokens", "4"])
    status, summary = caption("--vlm", vlm, store, "--out", out, "--max-new-tokens", 4,
                              "--column", "vlm_caption", capsys=capsys)
    assert status == EXIT_ERROR and "other inputs or settings" in capsys.readouterr().err
    status, summary = caption("--vlm", vlm, store, "--out", out, "--max-new-tokens", 4,
                              capsys=capsys)
    assert status == EXIT_OK and summary["shards_written"] == [1] and calls == [0]
    made = open_store(out)
    assert len(made.read_column("caption")) == 6
    assert made.attrs["captioned_with"]["prompt"].startswith("Describe this galaxy image")

    status, _ = caption("--vlm", vlm, store, "--out", out, "--max-new-tokens", 4,
                        "--prompt", "What is this?", capsys=capsys)
    err = capsys.readouterr().err
    assert status == EXIT_ERROR and "other inputs or settings" in err and "prompt" in err


def test_a_folder_that_is_not_a_model_is_one_line(store, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    missing = tmp_path / "nowhere"
    assert caption("--vlm", missing, store, capsys=capsys)[0] == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "config.json").write_text('{"model_type": "not-a-model"}')
    assert caption("--vlm", junk, store, capsys=capsys)[0] == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(junk) in err
    assert caption("--prompt", "hi", store, capsys=capsys)[0] == EXIT_ERROR
    assert "--vlm" in capsys.readouterr().err
