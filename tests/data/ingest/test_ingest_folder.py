"""GalaxySD folders: images + .txt captions, bad files set aside with their reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ingest_helpers import (
    galaxysd_folder,
    ingest,
    read_rejects_csv,
    reasons,
    rgb,
    truncate,
    write_image,
)
from PIL import Image

from galaxy_hpc.cli.main import EXIT_OK, EXIT_REJECTS, main
from galaxy_hpc.data.ingest import rejects_path
from hpc.store import open_store


@pytest.mark.parametrize("backend", ["zarr", "hdf5"])
def test_images_and_caption_folder(tmp_path, backend):
    ids = galaxysd_folder(tmp_path / "img", 7, captions=tmp_path / "txt")
    summary, store, rejects = ingest(tmp_path, tmp_path / "img", backend=backend, size=32,
                                     shard_size=3, folder={"captions": str(tmp_path / "txt")})
    assert (summary.num_ingested, summary.num_rejected, summary.exit_code) == (7, 0, 0)
    assert summary.kind == "folder" and rejects == []
    assert store.spec.image_shape == (3, 32, 32) and store.spec.image_dtype == "uint8"
    assert list(store.read_column("id")) == ids
    assert store.read_column("caption")[2] == "sdss, galaxy number 2"
    assert store.read_column("source")[0] == str(tmp_path / "img" / "g000.jpg")
    assert set(store.read_column("crop_size")) == {48}
    assert store.checksum == summary.checksum
    attrs = store.attrs
    assert attrs["source_kind"] == "folder" and attrs["counts"]["ingested"] == 7
    assert attrs["rejects_file"] is None and not rejects_path(store.path).exists()
    assert {"command", "galaxy_hpc_version", "ingested_at", "ingest_config"} <= set(attrs)
    assert not (tmp_path / f"{store.path.name}.staging").exists()


def test_bad_files_are_rejected_with_reasons_and_exit_3(tmp_path, capsys):
    img = tmp_path / "img"
    galaxysd_folder(img, 8)
    truncate(img / "g001.jpg")  # corrupt: half its bytes
    (img / "g002.jpg").write_text("this is not a JPEG")  # a non-image named .jpg
    (img / "g003.txt").unlink()  # missing caption
    write_image(img / "g004.png", rgb(48, 48, 99))  # same id as g004.jpg: a duplicate
    out = tmp_path / "s.zarr"
    status = main(["ingest", str(img), "--out", str(out), "--size", "32", "--shard-size", "2",
                   "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert status == EXIT_REJECTS == summary["exit_code"]
    assert summary["num_ingested"] == 5 and summary["num_rejected"] == 4
    assert summary["rejects_file"] == str(rejects_path(out))
    found = reasons(read_rejects_csv(rejects_path(out)))
    assert found == {"g001.jpg": "truncated", "g002.jpg": "not_an_image",
                     "g003.jpg": "missing_caption", "g004.png": "duplicate_id"}
    assert list(open_store(out).read_column("id")) == ["g000", "g004", "g005", "g006", "g007"]
    human = main(["ingest", str(img), "--out", str(tmp_path / "t.zarr"), "--size", "32"])
    text = capsys.readouterr().out
    assert human == EXIT_REJECTS and "rejected 4" in text and "t.zarr.rejects.csv" in text


def test_clean_run_exits_0_and_writes_no_rejects_file(tmp_path, capsys):
    galaxysd_folder(tmp_path / "img", 3)
    out = tmp_path / "s.h5"
    assert main(["ingest", str(tmp_path / "img"), "--out", str(out), "--format", "hdf5",
                 "--size", "32", "--json"]) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_ingested"] == 3 and summary["rejects_file"] is None
    assert not rejects_path(out).exists() and not (tmp_path / "s.h5.notes.csv").exists()
    assert open_store(out).attrs["rejects_file"] is None
    # A rerun into a folder that held rejects of an earlier, overwritten ingest drops them.
    rejects_path(out).write_text("source,reason,id\nold.jpg,truncated: x,old\n")
    assert main(["ingest", str(tmp_path / "img"), "--out", str(out), "--size", "32",
                 "--overwrite"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "ingested 3 of 3 images" in text and "rejected" not in text
    assert not rejects_path(out).exists()


def test_images_without_any_captions_have_no_caption_column(tmp_path):
    for i in range(3):
        write_image(tmp_path / "img" / f"p{i}.png", rgb(40, 40, i))
    summary, store, _ = ingest(tmp_path, tmp_path / "img", size=32)
    assert summary.num_ingested == 3 and "caption" not in store.columns


def test_grey_and_alpha_images_become_rgb(tmp_path):
    img = tmp_path / "img"
    img.mkdir()
    grey = rgb(40, 40, 1)[..., 0]
    Image.fromarray(grey, "L").save(img / "a.png")
    rgba = np.dstack([rgb(40, 40, 2), np.full((40, 40), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(img / "b.png")
    _, store, _ = ingest(tmp_path, img, size=40)
    images = store.read_images()
    np.testing.assert_array_equal(images[0], np.stack([grey] * 3))  # 40 px: copied exactly
    np.testing.assert_array_equal(images[1], rgba[..., :3].transpose(2, 0, 1))


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_centre_crop_keeps_an_off_square_galaxy_centred(tmp_path, ext):
    # 48 x 80: the galaxy sits at the middle of the wide image; a left-aligned crop or a
    # squash would move or stretch it.
    write_image(tmp_path / "img" / f"wide{ext}", rgb(48, 80, 0, sigma=3.0))
    _, store, _ = ingest(tmp_path, tmp_path / "img", size=32)
    image = store.read_images()[0].astype(float).sum(axis=0)
    image -= np.median(image)
    image[image < 0] = 0
    y, x = np.mgrid[:32, :32]
    cy, cx = (image * y).sum() / image.sum(), (image * x).sum() / image.sum()
    assert abs(cy - 15.5) < 0.3 and abs(cx - 15.5) < 0.3
    spread_y = np.sqrt((image * (y - cy) ** 2).sum() / image.sum())
    spread_x = np.sqrt((image * (x - cx) ** 2).sum() / image.sum())
    assert abs(spread_x / spread_y - 1) < 0.1  # still round: cropped, not squashed
