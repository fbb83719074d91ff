"""Astro-Diffusion's class folders (spiral_galaxies/, nebulae/) as a label column, and the
JSONL manifest written from such a folder, ingested back; real JPEG/PNG files."""

from __future__ import annotations

import json

import numpy as np
from ingest_helpers import ingest, reasons, rgb, write_image
from PIL import Image

from galaxy_hpc.cli.main import EXIT_ERROR, EXIT_OK, main
from galaxy_hpc.data.ingest.manifest import write_manifest

CLASSES = {"spiral_galaxies": 3, "nebulae": 2}


def class_folders(root, *, captions: bool = False):
    """spiral_galaxies/s0.jpg ... and nebulae/n0.png ..., each a different picture;
    with captions, a .txt beside the even-numbered ones."""
    for cls, n in CLASSES.items():
        for i in range(n):
            name = f"{cls[0]}{i}"
            write_image(root / cls / f"{name}{'.jpg' if cls[0] == 's' else '.png'}",
                        rgb(40 + 4 * i, 40, 10 * i + len(cls)))
            if captions and i % 2 == 0:
                (root / cls / f"{name}.txt").write_text(f"a picture of {cls} number {i}\n")
    return root


def test_class_folders_become_a_label_column(tmp_path):
    root = class_folders(tmp_path / "astro")
    write_image(root / "loose.jpg", rgb(40, 40, 1))  # not in a class folder
    summary, store, rejects = ingest(tmp_path, root, size=32, folder={"labels": True})
    assert summary.kind == "folder" and summary.num_ingested == 5 and summary.exit_code == 3
    assert reasons(rejects) == {"loose.jpg": "no_label"}
    ids, labels = list(store.read_column("id")), list(store.read_column("label"))
    assert ids == ["nebulae/n0", "nebulae/n1", "spiral_galaxies/s0", "spiral_galaxies/s1",
                   "spiral_galaxies/s2"]
    assert labels == [i.split("/")[0] for i in ids]
    assert summary.notes["labels"] == {"nebulae": 2, "spiral_galaxies": 3}
    assert "caption" not in store.columns
    # The pixels are the files' own: the 40x40 PNG, resized, not some other image.
    with Image.open(root / "nebulae" / "n0.png") as img:
        expected = np.asarray(img.convert("RGB").resize((32, 32), Image.BICUBIC))
    got = store.read_images(0, 1)[0].transpose(1, 2, 0).astype(int)
    assert np.abs(got - expected).mean() < 3


def test_cli_labels_flag_and_auto_detection_of_class_folders(tmp_path, capsys):
    root = class_folders(tmp_path / "astro")
    out = tmp_path / "s.zarr"
    assert main(["ingest", str(root), "--labels", "--out", str(out), "--size", "16",
                 "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["num_ingested"] == 5


def test_class_folders_without_labels_name_the_flag_that_reads_them(tmp_path, capsys):
    """Galaxies sorted into class folders with nothing at the top: the error said "no FITS
    files and no images; name the kind with --kind", which no kind answers."""
    root = class_folders(tmp_path / "astro")
    out = tmp_path / "s.zarr"
    assert main(["ingest", str(root), "--out", str(out)]) == EXIT_ERROR
    error = capsys.readouterr().err
    assert "sub-folders hold 5 image or FITS files (nebulae/, spiral_galaxies/)" in error
    assert "--labels" in error and "--kind" not in error and not out.exists()
    assert main(["ingest", str(root), "--out", str(out), "folder.recursive=true",
                 "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["num_ingested"] == 5
    (tmp_path / "empty" / "sub").mkdir(parents=True)  # nothing anywhere: --kind, as before
    assert main(["ingest", str(tmp_path / "empty"), "--out", str(tmp_path / "e.zarr")]) \
        == EXIT_ERROR
    assert "no FITS files and no images; name the kind with --kind" in capsys.readouterr().err


def test_manifest_from_class_folders_round_trips_through_jsonl_ingest(tmp_path, capsys):
    root = class_folders(tmp_path / "astro", captions=True)
    (root / "notes.md").write_text("not an image")
    out = tmp_path / "manifests" / "train.jsonl"
    assert main(["manifest", str(root), "--out", str(out), "--json"]) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"out": str(out), "num_images": 5, "num_captioned": 3,
                       "labels": {"nebulae": 2, "spiral_galaxies": 3}}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == {"path": "../astro/nebulae/n0.png", "label": "nebulae",
                        "caption": "a picture of nebulae number 0"}
    assert lines[1] == {"path": "../astro/nebulae/n1.png", "label": "nebulae"}
    assert [line["label"] for line in lines] == ["nebulae"] * 2 + ["spiral_galaxies"] * 3

    summary, store, rejects = ingest(tmp_path, out, size=32, require_captions=False)
    assert summary.kind == "jsonl" and summary.num_ingested == 5 and rejects == []
    assert list(store.read_column("label")) == [line["label"] for line in lines]
    assert list(store.read_column("caption")) == [line.get("caption", "") for line in lines]


def test_manifest_refuses_to_replace_and_names_missing_folder(tmp_path, capsys):
    root = class_folders(tmp_path / "astro")
    out = tmp_path / "m.jsonl"
    first = write_manifest(root, out)
    assert first.num_images == 5 and first.num_captioned == 0
    assert main(["manifest", str(root), "--out", str(out)]) == EXIT_ERROR
    assert "--overwrite" in capsys.readouterr().err
    assert main(["manifest", str(root), "--out", str(out), "--overwrite"]) == EXIT_OK
    assert main(["manifest", str(tmp_path / "nope"), "--out", str(tmp_path / "x.jsonl")]) \
        == EXIT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope: no such folder" in err[-1]
