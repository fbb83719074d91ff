"""Commands check that they can write their outputs before any work, and say so in one
line: `caption` before reading its table, `predict` before loading its model (the store
and model here are never read past that check). Tests run as root, where permission bits
stop nothing: an output under a plain file can never be created by anyone. synth,
ingest, generate, train and evaluate have the same test beside their other tests."""

from __future__ import annotations

import subprocess


def one_line(galaxy_hpc, *argv) -> str:
    done = subprocess.run([galaxy_hpc, *map(str, argv)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1 and done.stdout == "", done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_caption_and_predict_check_their_output_first(galaxy_hpc, tmp_path):
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth

    blocker = tmp_path / "afile"
    blocker.write_text("")
    votes = tmp_path / "votes.csv"
    votes.write_text("not read: the output is checked first\n")
    assert one_line(galaxy_hpc, "caption", votes, "--out", blocker / "c.csv") == (
        f"galaxy-hpc caption: error: cannot write the captions {blocker / 'c.csv'}: "
        f"{blocker} is a file, not a folder")
    store = tmp_path / "s.zarr"
    run_synth(SynthJobConfig(out=str(store), num_galaxies=4, seed=1, shard_size=4),
              progress=False)
    assert one_line(galaxy_hpc, "predict", tmp_path / "no-model", store, "--out",
                    blocker / "p.fits") == (
        f"galaxy-hpc predict: error: cannot write the predictions table {blocker / 'p.fits'}: "
        f"{blocker} is a file, not a folder")
