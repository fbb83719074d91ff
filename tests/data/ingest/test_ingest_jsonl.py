"""Astro-Diffusion manifests: {"path", "caption"} lines, relative to the manifest."""

from __future__ import annotations

import pytest
from ingest_helpers import ingest, reasons, rgb, write_image, write_jsonl


def manifest_with_images(tmp_path, n=5):
    folder = tmp_path / "data"
    records = []
    for i in range(n):
        write_image(folder / "spiral_galaxies" / f"s{i}.png", rgb(64, 64, i))
        records.append({"path": f"spiral_galaxies/s{i}.png",
                        "caption": f"A spiral galaxy with {i + 2} arms."})
    return folder, records


@pytest.mark.parametrize("backend", ["zarr", "hdf5"])
def test_manifest_paths_are_relative_to_it(tmp_path, backend):
    folder, records = manifest_with_images(tmp_path)
    outside = write_image(tmp_path / "elsewhere" / "nebula.png", rgb(80, 60, 9))
    records.append({"path": str(outside), "caption": "  An emission nebula.  "})
    manifest = write_jsonl(folder / "train.jsonl", records)
    summary, store, _ = ingest(tmp_path, manifest, backend=backend, size=32)
    assert summary.kind == "jsonl" and (summary.num_ingested, summary.num_rejected) == (6, 0)
    assert list(store.read_column("id")) == [r["path"] for r in records]
    assert store.read_column("caption")[-1] == "An emission nebula."
    assert store.read_column("source")[0] == str(folder / "spiral_galaxies" / "s0.png")
    assert list(store.read_column("crop_size")) == [64] * 5 + [60]


def test_bad_lines_missing_captions_and_files_are_rejected(tmp_path):
    folder, records = manifest_with_images(tmp_path, 6)
    records[1]["caption"] = "   "  # empty caption
    del records[2]["caption"]  # no caption at all
    records[3] = dict(records[0])  # the same path again: a duplicate id
    records[4]["path"] = "spiral_galaxies/gone.png"  # no such file
    manifest = write_jsonl(folder / "m.jsonl", [*records, "{not json", '{"caption": "x"}'])
    summary, store, rejects = ingest(tmp_path, manifest, size=32)
    assert summary.num_ingested == 2 and summary.exit_code == 3
    assert list(store.read_column("id")) == ["spiral_galaxies/s0.png", "spiral_galaxies/s5.png"]
    assert reasons(rejects) == {"s1.png": "missing_caption", "s2.png": "missing_caption",
                                "s0.png": "duplicate_id", "gone.png": "missing_file",
                                "m.jsonl:7": "bad_record", "m.jsonl:8": "bad_record"}


def test_captions_optional_when_not_required(tmp_path):
    folder, records = manifest_with_images(tmp_path, 2)
    del records[1]["caption"]
    manifest = write_jsonl(folder / "m.jsonl", records)
    summary, store, _ = ingest(tmp_path, manifest, size=32, require_captions=False)
    assert summary.num_rejected == 0 and store.read_column("caption")[1] == ""
    summary, store, _ = ingest(tmp_path, manifest, size=32, captions=False, name="n.zarr")
    assert "caption" not in store.columns
