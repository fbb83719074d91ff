"""`galaxy-hpc ingest`: flags or a config file, kind detection, exit statuses, reruns."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ingest_helpers import galaxysd_folder, noisy_fits_folder, truncate, write_jsonl

from galaxy_hpc.cli.main import EXIT_ERROR, EXIT_OK, EXIT_REJECTS, main
from galaxy_hpc.data.ingest import rejects_path
from hpc.store import open_store


def run_json(capsys, *argv) -> tuple[int, dict]:
    status = main(["ingest", *map(str, argv), "--json"])
    out = capsys.readouterr().out
    return status, (json.loads(out) if out.strip() else {})


def test_config_file_with_overrides_and_flags(tmp_path, capsys):
    from galaxy_hpc.jobs import (  # imports every job (torch): slow
        load_job_config,
        run_job,
    )

    galaxysd_folder(tmp_path / "img", 4)
    config = tmp_path / "ingest.yaml"
    config.write_text(f"kind: ingest\nsource: {tmp_path / 'img'}\nout: {tmp_path / 'a.zarr'}\n"
                      f"size: 64\nshard_size: 3\n")
    status, summary = run_json(capsys, config, "size=32", "--format", "hdf5", "--out",
                               tmp_path / "a.h5")
    assert status == EXIT_OK and summary["image_shape"] == [3, 32, 32]
    assert summary["format"] == "hdf5" and open_store(tmp_path / "a.h5").spec.shard_size == 3
    cfg = load_job_config("ingest", config, ["size=32", f"out={tmp_path / 'job.zarr'}"])
    result = run_job("ingest", cfg)  # what `galaxy-hpc submit ingest CONFIG` runs on each rank
    assert result.ok and result.checksum == summary["checksum"] and "ingested 4" in \
        result.summary()


@pytest.mark.parametrize("make, kind", [
    (lambda p: galaxysd_folder(p / "src", 2), "folder"),
    (lambda p: noisy_fits_folder(p / "src", 2), "fits"),
])
def test_kind_is_detected_from_the_path(tmp_path, capsys, make, kind):
    make(tmp_path)
    status, summary = run_json(capsys, tmp_path / "src", "--out", tmp_path / "s.zarr",
                               "--size", "16")
    assert status == EXIT_OK and summary["kind"] == kind


def test_fatal_errors_exit_1_and_write_no_store(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "s.zarr"
    assert main(["ingest", str(tmp_path / "empty"), "--out", str(out), "--kind", "folder"]) \
        == EXIT_ERROR
    assert "no images found" in capsys.readouterr().err and not out.exists()
    assert main(["ingest", str(tmp_path / "empty"), "--out", str(out)]) == EXIT_ERROR
    assert "name the kind with --kind" in capsys.readouterr().err
    galaxysd_folder(tmp_path / "img", 2)
    assert main(["ingest", str(tmp_path / "img"), "sise=32", "--out", str(out)]) == EXIT_ERROR
    assert "unknown key 'sise' (did you mean 'size'?)" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "img")]) == EXIT_ERROR
    assert "give --out STORE" in capsys.readouterr().err
    assert not out.exists()


def test_every_input_rejected_is_fatal_but_listed(tmp_path, capsys):
    ids = galaxysd_folder(tmp_path / "img", 2)
    for record_id in ids:
        truncate(tmp_path / "img" / f"{record_id}.jpg", 0.3)
    out = tmp_path / "s.zarr"
    assert main(["ingest", str(tmp_path / "img"), "--out", str(out), "--shard-size", "1"]) \
        == EXIT_ERROR
    assert "all 2 inputs were rejected" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "s.zarr.staging").exists()
    assert rejects_path(out).read_text().count("truncated") == 2


def test_rerun_reports_the_finished_store_and_refuses_other_inputs(tmp_path, capsys):
    galaxysd_folder(tmp_path / "img", 3)
    truncate(tmp_path / "img" / "g001.jpg")
    argv = [tmp_path / "img", "--out", tmp_path / "s.zarr", "--size", "32"]
    status, first = run_json(capsys, *argv)
    leftover = tmp_path / "s.zarr.staging"  # as if killed while removing the staging folder
    (leftover / "part-00000000").mkdir(parents=True)
    status_again, again = run_json(capsys, *argv)
    assert status == status_again == EXIT_REJECTS and again["already_complete"]
    assert not leftover.exists()
    assert again["checksum"] == first["checksum"] and again["num_rejected"] == 1
    assert main(["ingest", *map(str, argv[:3]), "--size", "16"]) == EXIT_ERROR
    error = capsys.readouterr().err
    assert "already holds a store of galaxy-hpc ingest made from other inputs" in error
    assert "config.size: 32 != 16" in error and "pass --overwrite" in error
    status, replaced = run_json(capsys, *argv[:3], "--size", "16", "--overwrite")
    assert status == EXIT_REJECTS and replaced["image_shape"] == [3, 16, 16]


def test_human_summary_names_store_rate_and_checksum(tmp_path, capsys):
    folder = tmp_path / "data"
    galaxysd_folder(folder / "img", 2)
    manifest = write_jsonl(folder / "m.jsonl", [{"path": "img/g000.jpg", "caption": "a"},
                                                {"path": "img/g001.jpg", "caption": "b"}])
    assert main(["ingest", str(manifest), "--out", str(tmp_path / "m.zarr")]) == EXIT_OK
    text = capsys.readouterr().out
    assert "ingested 2 of 2 images (jsonl, 3x128x128 uint8)" in text
    assert str(tmp_path / "m.zarr") in text and "images/s" in text and "checksum sha256:" in text


def test_compression_flag_changes_the_layout_not_the_content(tmp_path, capsys):
    galaxysd_folder(tmp_path / "img", 5)
    status, packed = run_json(capsys, tmp_path / "img", "--out", tmp_path / "z.zarr",
                              "--size", "32")
    status_raw, raw = run_json(capsys, tmp_path / "img", "--out", tmp_path / "r.zarr",
                               "--size", "32", "--compression", "none")
    assert status == status_raw == EXIT_OK
    assert open_store(tmp_path / "z.zarr").spec.compression == "zstd"
    assert open_store(tmp_path / "r.zarr").spec.compression == "none"
    assert packed["checksum"] == raw["checksum"]
    status = main(["ingest", str(tmp_path / "img"), "--out", str(tmp_path / "g.h5"),
                   "--format", "hdf5", "--size", "32", "--compression", "zstd"])
    assert status == EXIT_ERROR and "compression must be one of gzip, none" in \
        capsys.readouterr().err


def cli(galaxy_hpc, *argv, script=None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", script] if script else [galaxy_hpc]
    return subprocess.run([*command, "ingest", *map(str, argv)], capture_output=True,
                          text=True, timeout=300)


KILL_AFTER_ONE_BLOCK = """
import os, sys
from hpc.store import staging
write = staging.Staging.write_part
def write_then_die(self, *args, **kwargs):
    write(self, *args, **kwargs)
    os._exit(9)  # as SIGKILL would: no clean-up runs
staging.Staging.write_part = write_then_die
from galaxy_hpc.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_ingest_resumes_with_no_leftovers(galaxy_hpc, tmp_path):
    galaxysd_folder(tmp_path / "img", 5)
    out = tmp_path / "out" / "s.zarr"
    argv = [tmp_path / "img", "--out", out, "--size", "16", "--shard-size", "2"]
    assert cli(galaxy_hpc, *argv, script=KILL_AFTER_ONE_BLOCK).returncode == 9
    # What kills at other moments leave: a store folder being built, a half-written file.
    (out.parent / ".s.zarr.creating-0123456789ab").mkdir()
    (out.parent / ".s.zarr.rejects.csv.4242.tmp").write_text("source,re")
    resumed = cli(galaxy_hpc, *argv)
    assert resumed.returncode == EXIT_OK, resumed.stderr
    assert "ingested 5 of 5 images" in resumed.stdout
    assert "resumed 1 of 3 blocks" in resumed.stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["s.zarr"]
    hidden = [p for p in out.rglob(".*")]
    assert hidden == [], hidden
    again = cli(galaxy_hpc, *argv)
    assert again.returncode == EXIT_OK and f"{out} was already complete" in again.stdout


def test_a_missing_source_is_called_missing(galaxy_hpc, tmp_path):
    out = tmp_path / "s.zarr"
    for kind, expected in ((None, "no such file or folder"), ("folder", "no such folder"),
                           ("fits", "no such FITS file, folder or glob"),
                           ("npy", "no such NPY file")):
        source = tmp_path / ("nothere.npy" if kind == "npy" else "nothere")
        done = cli(galaxy_hpc, source, "--out", out, *(["--kind", kind] if kind else []))
        assert done.returncode == EXIT_ERROR and "Traceback" not in done.stderr
        assert done.stderr.strip() == f"galaxy-hpc ingest: error: {source}: {expected}" \
            + ("" if kind != "folder" else " (the images' folder is missing)"), done.stderr
    (tmp_path / "afile").write_text("")
    done = cli(galaxy_hpc, tmp_path / "afile", "--out", out, "--kind", "folder")
    assert "a file, not a folder of images" in done.stderr and not out.exists()


def test_an_unwritable_output_is_one_line_before_any_work(galaxy_hpc, tmp_path):
    galaxysd_folder(tmp_path / "img", 2)
    blocker = tmp_path / "afile"
    blocker.write_text("")
    done = cli(galaxy_hpc, tmp_path / "img", "--out", blocker / "s.zarr")
    assert done.returncode == EXIT_ERROR and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"galaxy-hpc ingest: error: cannot write the store "
                                   f"{blocker / 's.zarr'}: {blocker} is a file, not a folder")
