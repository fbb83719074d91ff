"""`galaxy-hpc dedup` on real deep-field cutouts: shifted, re-encoded, flipped and copied
tiles are grouped with their originals, distinct tiles are not; the clean and marked
stores, the CSV and the page; resume; 2 ranks == 1."""

from __future__ import annotations

import csv
import json
import subprocess

import numpy as np
import pytest

from galaxy_hpc.cli.main import main
from hpc.store import open_store


def dedup(store, out, *extra, capsys):
    assert main(["dedup", str(store), "--out", str(out), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cleaned(deep_field, tmp_path_factory):
    out = tmp_path_factory.mktemp("dedup-run") / "clean.zarr"
    from galaxy_hpc.cli.batch import load_batch_config, resolve_inputs
    from galaxy_hpc.cli.main import build_parser
    from galaxy_hpc.curate.config import DedupConfig
    from galaxy_hpc.curate.dedup import run_dedup

    args = build_parser().parse_args(["dedup", str(deep_field["store"]), "--out", str(out)])
    resolve_inputs(args, ("store",))
    result = run_dedup(load_batch_config(DedupConfig, args), show_progress=False).to_dict()
    return {"result": result, "out": out}


def test_copies_are_grouped_with_their_originals_and_distinct_tiles_are_not(deep_field,
                                                                            cleaned):
    result = cleaned["result"]
    rows = list(csv.DictReader(open(result["csv"])))
    removed = {int(r["index"]): int(r["duplicate_of"]) for r in rows if r["kept"] == "False"}
    assert removed == deep_field["duplicates"]  # every copy found, nothing else
    reasons = {int(r["index"]): r["reason"] for r in rows if r["kept"] == "False"}
    num = deep_field["num"]
    assert reasons[num - 2] == "exact item" and reasons[num - 1] == "exact image"
    assert {reasons[i] for i in range(num - 7, num - 2)} == {"near"}
    for row in rows:
        if row["kept"] == "False" and row["reason"] == "near":
            assert float(row["similarity"]) >= result["threshold"]
    assert result["counts"] == {"items": num, "kept": num - 7, "removed": 7, "groups": 7,
                                "exact_item": 1, "exact_image": 1, "near": 5}
    assert result["keep_rule"] == "lowest index" and result["threshold"] == 0.6


def test_clean_store_holds_the_kept_items_with_their_columns(deep_field, cleaned):
    clean, source = open_store(cleaned["out"]), open_store(deep_field["store"])
    keep = [i for i in range(deep_field["num"]) if i not in deep_field["duplicates"]]
    assert len(clean) == len(keep)
    assert (clean.read_images() == source.read_images_at(keep)).all()
    assert list(clean.read_column("id")) == [deep_field["ids"][i] for i in keep]
    assert clean.attrs["dedup"]["source_checksum"] == source.checksum
    clean.verify()


def test_page_shows_each_group_with_thumbnails(cleaned):
    from PIL import Image

    page = open(cleaned["result"]["page"]).read()
    assert page.count("<h3>group ") == 7
    folder = cleaned["out"].parent / "clean.dedup"
    sources = [s.split('"')[0] for s in page.split('<img src="')[1:]]
    assert len(sources) == 14
    for source in sources:
        with Image.open(folder / source) as thumb:
            assert thumb.size == (64, 64) and np.asarray(thumb).std() > 0


def test_a_rerun_resumes_from_the_embeddings_on_disk(deep_field, cleaned, capsys):
    again = dedup(deep_field["store"], cleaned["out"], capsys=capsys)
    assert (again["embedded"], again["resumed"]) == (0, deep_field["num"])
    assert again["counts"] == cleaned["result"]["counts"]
    assert again["out_checksum"] == cleaned["result"]["out_checksum"]


def test_mark_writes_every_item_with_keep_and_duplicate_of(deep_field, tmp_path, capsys):
    out = tmp_path / "marked.zarr"
    result = dedup(deep_field["store"], out, "--mark", capsys=capsys)
    marked = open_store(out)
    assert len(marked) == deep_field["num"] and result["mark"]
    keep, of = marked.read_column("keep"), marked.read_column("duplicate_of")
    for index in range(deep_field["num"]):
        original = deep_field["duplicates"].get(index)
        assert keep[index] == (original is None)
        assert of[index] == (-1 if original is None else original)


def test_without_flips_a_flipped_copy_is_not_found(deep_field, tmp_path, capsys):
    result = dedup(deep_field["store"], tmp_path / "noflip.zarr", "--transforms", "none",
                   capsys=capsys)
    rows = list(csv.DictReader(open(result["csv"])))
    removed = {int(r["index"]) for r in rows if r["kept"] == "False"}
    flipped = [i for i, name in enumerate(deep_field["ids"]) if name.startswith("flipped")]
    assert not removed & set(flipped) and len(removed) == 5


@pytest.mark.mpi
def test_two_ranks_give_the_result_of_one(deep_field, cleaned, mpiexec, galaxy_hpc, tmp_path):
    import os

    out = tmp_path / "two.zarr"
    done = subprocess.run([mpiexec, "-n", "2", galaxy_hpc, "dedup", str(deep_field["store"]),
                           "--out", str(out), "--json"],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads(done.stdout.strip().splitlines()[-1])
    assert two["num_ranks"] == 2 and two["counts"] == cleaned["result"]["counts"]
    assert two["out_checksum"] == cleaned["result"]["out_checksum"]


def test_bad_inputs_are_one_line_errors(deep_field, tmp_path, capsys):
    assert main(["dedup", str(deep_field["store"]), "--out", str(tmp_path / "c.zarr"),
                 "--extractor", "clip"]) == 1
    assert "needs --weights CLIP_FOLDER" in capsys.readouterr().err
    assert main(["dedup", str(deep_field["store"]), "--out", str(deep_field["store"])]) == 1
    assert "is the store itself" in capsys.readouterr().err
    assert main(["dedup", str(deep_field["store"]), "--out", str(tmp_path / "c.zarr"),
                 "--threshold", "2"]) == 1
    assert "threshold is a cosine similarity" in capsys.readouterr().err


def test_any_evaluation_extractor_embeds_here_a_clip_folder(deep_field, tmp_path, capsys):
    """A (random) CLIP's image embeddings run through the same pass; what it groups beyond
    the exact copies means nothing with random weights (a random CLIP finds most tiles
    alike), the exact copies must be removed."""
    from support.tiny_clip import tiny_clip

    tiny_clip(tmp_path / "clip", ["a galaxy"])
    result = dedup(deep_field["store"], tmp_path / "clip-clean.zarr", "--extractor", "clip",
                   "--weights", str(tmp_path / "clip"), "--transforms", "none",
                   "--threshold", "0.9999", capsys=capsys)
    assert result["extractor_spec"]["name"] == "clip"
    rows = list(csv.DictReader(open(result["csv"])))
    removed = {int(r["index"]) for r in rows if r["kept"] == "False"}
    assert {deep_field["num"] - 2, deep_field["num"] - 1} <= removed


def test_synthetic_galaxies_copies_are_grouped_and_distinct_ones_are_not(synth_field,
                                                                         tmp_path, capsys):
    """Centred galaxies look alike in their smooth profiles; the fingerprint keeps what a
    copy shares with its original and no other galaxy."""
    result = dedup(synth_field["store"], tmp_path / "clean.zarr", capsys=capsys)
    rows = list(csv.DictReader(open(result["csv"])))
    removed = {int(r["index"]): int(r["duplicate_of"]) for r in rows if r["kept"] == "False"}
    assert removed == synth_field["duplicates"]


@pytest.mark.parametrize("side", [64, 50])
def test_pixel_fingerprint_of_a_flipped_image_is_the_flipped_fingerprint(side):
    """What lets d4 cost one embedding for `pixels`: its 8 maps, made by flipping the
    fingerprint, equal the fingerprints of the 8 flipped images."""
    import torch

    from galaxy_hpc.curate.embedders import build_embedder, d4_images

    embedder = build_embedder("pixels", weights=None, extractor_module=None,
                              device=torch.device("cpu"))
    images = torch.randint(0, 256, (3, 3, side, side), dtype=torch.uint8)
    shortcut = embedder.embed(images, "d4")
    direct = np.stack([embedder.embed_batch(v.contiguous()).numpy()
                       for v in d4_images(images)], axis=1)
    assert shortcut.shape == (3, 8, 1024)
    np.testing.assert_allclose(shortcut, direct, atol=1e-4)
    assert np.abs(direct[:, 0] - direct[:, 4]).max() > 0.1  # a flip changes it


def test_another_threshold_into_the_same_out_starts_the_store_over(deep_field, tmp_path,
                                                                    capsys):
    out = tmp_path / "again.zarr"
    strict = dedup(deep_field["store"], out, "--threshold", "0.99", capsys=capsys)
    assert strict["counts"]["near"] == 2  # the flipped and the turned copies (cosine 1.0)
    assert len(open_store(out)) == deep_field["num"] - 4
    loose = dedup(deep_field["store"], out, capsys=capsys)
    assert loose["counts"]["removed"] == 7 and len(open_store(out)) == deep_field["num"] - 7
    assert open_store(out).checksum == loose["out_checksum"] != strict["out_checksum"]


def test_a_store_dedup_did_not_start_is_never_replaced_without_overwrite(deep_field, tmp_path,
                                                                         capsys):
    other = tmp_path / "precious.zarr"  # someone's store, at the path given as --out
    assert main(["synth", "--n", "8", "--size", "16", "--out", str(other)]) == 0
    before = open_store(other).checksum
    assert main(["dedup", str(deep_field["store"]), "--out", str(other)]) == 1
    assert "was not started by a dedup" in capsys.readouterr().err
    assert open_store(other).checksum == before and len(open_store(other)) == 8
    replaced = dedup(deep_field["store"], other, "--overwrite", capsys=capsys)
    assert open_store(other).checksum == replaced["out_checksum"] != before
