"""`galaxy-hpc evaluate` through the command on stores it cannot judge as given: NaN or
infinite pixels on either side are named (store and first items) instead of computed
over; images of another size are stated in the output; an unwritable --out stops the
evaluation before its work, in one line."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import eval_tiny_extractor
from galaxy_hpc.data.synth.config import SynthConfig

FID = ["evaluate", "fid", "--extractor", eval_tiny_extractor.NAME, "--extractor-module",
       "eval_tiny_extractor", "--no-cache", "--metrics", "fid"]


def with_holes(source, out, items, *, column: bool = False):
    """A copy of the float store `source` whose `items` hold a NaN (and, the second, an
    infinity); with `column`, the nonfinite_pixels column ingest writes."""
    from hpc.store import StoreSpec, create_store, finalize_store, open_store

    store = open_store(source)
    images = store.read_images()
    counts = np.zeros(len(store), dtype=np.int64)
    for k, item in enumerate(items):
        images[item, 0, 5, 5] = np.nan if k % 2 == 0 else np.inf
        counts[item] = 1
    columns = {"id": store.read_column("id")}
    types = {"id": "str"}
    if column:
        columns["nonfinite_pixels"], types["nonfinite_pixels"] = counts, "int64"
    spec = StoreSpec(image_shape=store.spec.image_shape, image_dtype="float32", columns=types,
                     shard_size=len(store))
    writer = create_store(out, spec, num_items=len(store),
                          attrs={"source_kind": "fits"} if column else None)
    writer.write_shard(0, images, columns)
    finalize_store(out)
    return out


def evaluate(galaxy_hpc, env, *argv) -> subprocess.CompletedProcess:
    done = subprocess.run([galaxy_hpc, *map(str, argv)], capture_output=True, timeout=300,
                          env=env)  # bytes: text mode would turn a bar's \r into \n
    done.stdout, done.stderr = done.stdout.decode(), done.stderr.decode()
    return done


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1 and done.stdout == "", done.stdout
    assert "Traceback" not in done.stderr and "RuntimeWarning" not in done.stderr, done.stderr
    # What a terminal shows: a progress bar's line is overwritten (\r) or cleared.
    lines = [line.split("\r")[-1] for line in done.stderr.split("\n")]
    lines = [line for line in lines if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def holes(float_stores, tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-nonfinite")
    real, gen = float_stores["real"], float_stores["generated"]
    return {"gen": with_holes(gen, root / "gen_holes.zarr", [9, 30, 31, 33, 40, 41, 44]),
            "real": with_holes(real, root / "real_holes.zarr", [2, 3]),
            "ingested": with_holes(real, root / "ingested.zarr", [5], column=True)}


def test_nonfinite_generated_pixels_are_named_not_cast(galaxy_hpc, subprocess_env,
                                                       float_stores, holes):
    done = evaluate(galaxy_hpc, subprocess_env, *FID, float_stores["real"], holes["gen"])
    assert one_line_error(done) == (
        f"galaxy-hpc evaluate: error: {holes['gen']}: items 9 (id synth-4-9), 30 (id "
        "synth-4-30), 31 (id synth-4-31), 33 (id synth-4-33), 40 (id synth-4-40) and 2 more "
        "hold NaN or infinite pixels; FID needs finite pixels: replace or drop those items "
        "in the store")


def test_nonfinite_real_pixels_are_named(galaxy_hpc, subprocess_env, float_stores, holes):
    done = evaluate(galaxy_hpc, subprocess_env, *FID, holes["real"], float_stores["generated"])
    error = one_line_error(done)
    assert f"{holes['real']}: items 2 (id synth-3-2), 3 (id synth-3-3) hold NaN" in error
    # An ingested store counted them: refused before any image is read, with the fix.
    done = evaluate(galaxy_hpc, subprocess_env, *FID, holes["ingested"],
                    float_stores["generated"])
    assert one_line_error(done).endswith(
        f"{holes['ingested']}: item 5 (id synth-3-5) holds NaN or infinite pixels; FID needs "
        "finite pixels: re-ingest it with nonfinite=zero (set them to 0, still counted) or "
        "nonfinite=reject (set those images aside), adding --overwrite; or keep the others: "
        f"galaxy-hpc select {holes['ingested']} --where \"nonfinite_pixels == 0\" --out "
        "NEW_STORE")


def test_mismatched_image_sizes_are_stated(galaxy_hpc, subprocess_env, stores, tmp_path):
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth

    small = tmp_path / "small.zarr"
    run_synth(SynthJobConfig(out=str(small), num_galaxies=24, seed=5, shard_size=32,
                             galaxy=SynthConfig(size=32, output="uint8")), progress=False)
    done = evaluate(galaxy_hpc, subprocess_env, *FID, stores["real"], small)
    assert done.returncode == 0, done.stderr
    assert ("image sizes differ: real 64x64 px, generated 32x32 px; the extractor resizes "
            "both to its input size") in done.stdout
    same = evaluate(galaxy_hpc, subprocess_env, *FID, stores["real"], stores["generated"])
    assert same.returncode == 0 and "image sizes differ" not in same.stdout


def test_an_unwritable_out_stops_before_the_work(galaxy_hpc, subprocess_env, stores,
                                                 tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    done = evaluate(galaxy_hpc, subprocess_env, *FID, stores["real"], stores["generated"],
                    "--out", blocker / "run")
    assert one_line_error(done) == (f"galaxy-hpc evaluate: error: cannot write the results "
                                    f"folder (--out) {blocker / 'run'}: {blocker} is a file, "
                                    "not a folder")
    config = tmp_path / "evaluate.yaml"
    config.write_text(f"kind: evaluate\nreal: {stores['real']}\ngenerated: "
                      f"{stores['generated']}\nout: {blocker / 'run'}\n")
    done = evaluate(galaxy_hpc, subprocess_env, "evaluate", "all", config)
    assert one_line_error(done).startswith("galaxy-hpc evaluate: error: cannot write the "
                                           f"results folder (out) {blocker / 'run'}")


@pytest.mark.mpi
def test_on_two_ranks_the_rank_that_meets_them_stops_every_rank(galaxy_hpc, mpiexec,
                                                                subprocess_env, float_stores,
                                                                holes, tmp_path):
    """Item 40 of the generated store is read by rank 1 alone: its error becomes every
    rank's (rank 0 prints it) instead of rank 1 leaving and rank 0 waiting for ever."""
    gen = with_holes(float_stores["generated"], tmp_path / "gen40.zarr", [40])
    done = subprocess.run([mpiexec, "-n", "2", galaxy_hpc, *FID, "--batch-size", "8",
                           float_stores["real"], gen], capture_output=True, timeout=300,
                          env=subprocess_env, cwd=tmp_path)
    assert done.returncode != 0
    assert (f"galaxy-hpc evaluate: error: {gen}: item 40 (id synth-4-40) holds NaN or "
            "infinite pixels; FID needs finite pixels") in done.stderr.decode()
