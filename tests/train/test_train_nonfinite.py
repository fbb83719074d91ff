"""`galaxy-hpc train` on a float store with NaN or infinite pixels, through the command:
refused in one line naming the store, the first items and the fix, before any step (an
ingested store counted them; any other is caught by the stretch's sample or, for items
outside it, by the read of their batch: tests/data/test_dataset_nonfinite.py). An
unwritable run.output_dir is one line before anything is built."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
VAE_TINY = str(REPO / "configs" / "train" / "ldm_vae_tiny.yaml")
ENV = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}


def flux_store_with_holes(out: Path, items: list[int], *, counted: bool) -> Path:
    """24 synthetic flux galaxies (4 bands, 32 px); `items` get a NaN; `counted` adds the
    nonfinite_pixels column and provenance an ingest gives."""
    from galaxy_hpc.data.synth.config import SynthConfig
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth
    from hpc.store import StoreSpec, create_store, finalize_store, open_store

    clean = out.with_name(out.stem + "-clean.zarr")
    if not clean.exists():
        run_synth(SynthJobConfig(out=str(clean), num_galaxies=24, seed=5, shard_size=8,
                                 galaxy=SynthConfig(size=32, output="float32",
                                                    bands=("g", "r", "i", "z"))),
                  progress=False)
    store = open_store(clean)
    images = store.read_images()
    images[items, 1, 4, 4] = np.nan
    columns, types = {"id": store.read_column("id")}, {"id": "str"}
    if counted:
        counts = np.zeros(len(store), dtype=np.int64)
        counts[items] = 1
        columns["nonfinite_pixels"], types["nonfinite_pixels"] = counts, "int64"
    spec = StoreSpec(image_shape=store.spec.image_shape, image_dtype="float32", columns=types,
                     shard_size=8)
    writer = create_store(out, spec, num_items=len(store),
                          attrs={"source_kind": "fits"} if counted else None)
    for shard in range(3):
        writer.write_shard(shard, images[8 * shard:8 * shard + 8],
                           {k: v[8 * shard:8 * shard + 8] for k, v in columns.items()})
    finalize_store(out)
    return out


def train(galaxy_hpc, store, out, cwd) -> str:
    """The one line a refused run prints."""
    done = subprocess.run([galaxy_hpc, "train", VAE_TINY, f"data.store={store}",
                           f"run.output_dir={out}", "run.max_steps=2"], capture_output=True,
                          text=True, timeout=600, env=ENV, cwd=cwd)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert not (Path(out) / "train_log.jsonl").exists()
    return done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("counted", [True, False], ids=["ingested", "uncounted"])
def test_training_refuses_nonfinite_pixels_naming_store_and_items(galaxy_hpc, tmp_path,
                                                                   counted):
    store = flux_store_with_holes(tmp_path / "holes.zarr", [3, 17], counted=counted)
    line = train(galaxy_hpc, store, tmp_path / "run", tmp_path)
    named = f"{store}: items 3 (id synth-5-3), 17 (id synth-5-17) hold NaN or infinite pixels; "
    assert line.startswith(f"galaxy-hpc train: error: {named}"), line
    if counted:  # the column, before anything is read: with the settings that fix it
        advice = ("training needs finite pixels: re-ingest it with nonfinite=zero (set them "
                  "to 0, still counted) or nonfinite=reject (set those images aside), adding "
                  "--overwrite; or keep the others: ")
        assert advice in line, line
        command = shlex.split(line.split(advice, 1)[1])  # followed as it is given
        assert command[:2] == ["galaxy-hpc", "select"] and command[-1] == "NEW_STORE"
        kept = tmp_path / "kept.zarr"
        subprocess.run([galaxy_hpc, *command[1:-1], str(kept)], check=True, env=ENV,
                       cwd=tmp_path, capture_output=True, timeout=300)
        from hpc.store import open_store

        assert len(open_store(kept)) == 22  # the 24 but items 3 and 17
        done = subprocess.run([galaxy_hpc, "train", VAE_TINY, f"data.store={kept}",
                               f"run.output_dir={tmp_path / 'run2'}", "run.max_steps=2"],
                              capture_output=True, text=True, timeout=600, env=ENV, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
    else:
        assert "estimating its stretch from a sample needs finite pixels" in line


def test_an_unwritable_output_dir_is_one_line(galaxy_hpc, synth_store, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    line = train(galaxy_hpc, synth_store, blocker / "run", tmp_path)
    assert line == (f"galaxy-hpc train: error: cannot write the training output folder "
                    f"(run.output_dir) {blocker / 'run'}: {blocker} is a file, not a folder")


def test_the_gan_refuses_missing_conditions_with_a_select_that_fixes_it(galaxy_hpc, tmp_path):
    from support.stores import write_array_store

    from galaxy_hpc.data.synth.config import SynthConfig
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth
    from hpc.store import open_store

    clean = tmp_path / "clean.zarr"
    run_synth(SynthJobConfig(out=str(clean), num_galaxies=24, seed=4, shard_size=8,
                             galaxy=SynthConfig(size=50, output="float32")), progress=False)
    source = open_store(clean)
    redshift = source.read_column("redshift").copy()
    redshift[[3, 17]] = np.nan  # a catalogue's unmeasured redshifts
    holes = write_array_store(tmp_path / "holes.zarr", source.read_images(),
                              {"id": list(source.read_column("id")), "redshift": redshift,
                               "log_stellar_mass": source.read_column("log_stellar_mass")},
                              shard_size=8)
    gan = str(REPO / "configs" / "train" / "gan_tiny.yaml")
    refused = subprocess.run([galaxy_hpc, "train", gan, f"data.store={holes}",
                              f"run.output_dir={tmp_path / 'run'}", "run.max_steps=2"],
                             capture_output=True, text=True, timeout=600, env=ENV, cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    line = refused.stderr.strip().splitlines()[-1]
    advice = "keep the rows that have them: "
    assert f"{holes}: non-finite condition values {{'redshift': 2}}" in line and advice in line
    command = shlex.split(line.split(advice, 1)[1])
    assert command[:2] == ["galaxy-hpc", "select"] and command[-1] == "NEW_STORE"
    kept = tmp_path / "kept.zarr"
    subprocess.run([galaxy_hpc, *command[1:-1], str(kept)], check=True, env=ENV, cwd=tmp_path,
                   capture_output=True, timeout=300)
    assert len(open_store(kept)) == 22
    done = subprocess.run([galaxy_hpc, "train", gan, f"data.store={kept}",
                           f"run.output_dir={tmp_path / 'run'}", "run.max_steps=2"],
                          capture_output=True, text=True, timeout=600, env=ENV, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
