"""`galaxy-hpc generate` run again on an existing catalog, through the command: a finished
one says so and does nothing, another config is refused with the differences and the
real flag, `--overwrite` starts over (but not in a requeue of the same Slurm job), and an
unwritable output is one line before the model is loaded."""

from __future__ import annotations

import shutil
import subprocess

from gen_helpers import ENV, store_content

SMALL = ["conditions.per_row=1"]  # 6 objects in 2 shards: enough to see a rerun


def generate(galaxy_hpc, config, *argv, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([galaxy_hpc, "generate", str(config), *map(str, argv)],
                          capture_output=True, text=True, timeout=600, env=env or ENV)


def test_a_finished_catalog_is_reported_and_left_alone(reference, galaxy_hpc):
    out = reference["store"].path
    before = store_content(out)[0]
    done = generate(galaxy_hpc, reference["config"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == (
        f"{out} was already complete: a catalog of 48 objects (table {reference['table']}), "
        f"checksum {before}; nothing to do")
    assert store_content(out)[0] == before


def test_another_config_is_refused_and_overwrite_starts_over(reference, galaxy_hpc,
                                                             tmp_path):
    out = tmp_path / "catalog.zarr"
    shutil.copytree(reference["store"].path, out)
    refused = generate(galaxy_hpc, reference["config"], f"out={out}", "seed=8", *SMALL)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    error = refused.stderr.strip().splitlines()[-1]
    assert error.startswith(f"galaxy-hpc generate: error: {out} already holds a catalog of "
                            "galaxy-hpc generate made from other inputs or settings")
    assert "num_objects: 48 != 6" in error and "seed: 7 != 8" in error
    assert "pass --overwrite" in error
    assert store_content(out)[0] == reference["store"].checksum
    replaced = generate(galaxy_hpc, reference["config"], f"out={out}", "seed=8", *SMALL,
                        "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert replaced.stdout.startswith(f"wrote a catalog of 6 objects to {out}")
    assert len(store_content(out)[1]) == 6 and (tmp_path / "catalog.fits").is_file()
    # The same command requeued by Slurm (same job id) resumes its own store...
    job = {**ENV, "SLURM_JOB_ID": "4242"}
    first = generate(galaxy_hpc, reference["config"], f"out={out}", *SMALL, "--overwrite",
                     env=job)
    assert first.returncode == 0 and "wrote a catalog of 6 objects" in first.stdout
    checksum = store_content(out)[0]
    again = generate(galaxy_hpc, reference["config"], f"out={out}", *SMALL, "--overwrite",
                     env=job)
    assert again.returncode == 0 and "was already complete" in again.stdout
    # ...while another job's --overwrite deletes it and makes it again.
    other = generate(galaxy_hpc, reference["config"], f"out={out}", *SMALL, "--overwrite",
                     env={**ENV, "SLURM_JOB_ID": "4243"})
    assert other.returncode == 0 and "wrote a catalog of 6 objects" in other.stdout
    assert store_content(out)[0] == checksum  # the same config: the same bytes


def test_an_unwritable_output_is_one_line_before_the_model_loads(reference, galaxy_hpc,
                                                                 tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    for argv, what in (([f"out={blocker / 'c.zarr'}"], f"the catalog store {blocker}/c.zarr"),
                       ([f"table={blocker / 'c.fits'}", f"out={tmp_path / 'c.zarr'}"],
                        f"the catalog table {blocker}/c.fits"),
                       (["--object", "3", "--out", blocker / "o.npy"],
                        f"the object {blocker}/o.npy")):
        done = generate(galaxy_hpc, reference["config"], *argv)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert done.stderr.strip() == (f"galaxy-hpc generate: error: cannot write {what}: "
                                       f"{blocker} is a file, not a folder")
    assert not (tmp_path / "c.zarr").exists()
