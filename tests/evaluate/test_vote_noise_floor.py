"""benchmarks/vote_noise_floor.py reads a synth store's vote fractions with the answer
probabilities they were drawn from: the MAE left is the volunteers' counting noise, so it
shrinks as the square root of their number, and a perfect read beats any constant one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from support.stores import write_synth_store

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "vote_noise_floor.py"


def _script():
    spec = importlib.util.spec_from_file_location("vote_noise_floor", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_oracle_floor_is_the_volunteers_noise(tmp_path):
    script = _script()
    found = {}
    for volunteers in (44, 2000):
        out = write_synth_store(tmp_path / f"v{volunteers}.zarr", num_galaxies=48, seed=11,
                                shard_size=24, captions=False, size=32,
                                num_volunteers=volunteers)
        found[volunteers] = {q["slug"]: q for q in script.main([str(out)])["questions"]}
    few, many = found[44]["smooth_or_features"], found[2000]["smooth_or_features"]
    assert few["galaxies"] == many["galaxies"] == 48  # every galaxy reaches Q1
    # Binomial noise: sqrt(2000 / 44) = 6.7 times smaller with the larger crowd.
    assert 0.005 < few["oracle_mae"] < 0.08
    assert 4 < few["oracle_mae"] / many["oracle_mae"] < 10
    # The same galaxies, read by a constant (the mean fractions): far worse than the oracle.
    from galaxy_hpc.evaluate.morphology_fidelity import batch_sums, fractions
    from hpc.store import open_store

    store = open_store(tmp_path / "v44.zarr")
    truth = fractions(store, "fraction", np.arange(len(store)))
    mean = np.tile(truth.mean(axis=0), (len(truth), 1))
    constant = script.per_question(batch_sums(truth, mean, min_reach=0.5, num_bins=1))[0][0]
    assert constant > 3 * few["oracle_mae"]


def test_a_store_not_drawn_by_synth_is_refused(tmp_path):
    import zarr

    out = write_synth_store(tmp_path / "s.zarr", num_galaxies=8, seed=2, shard_size=8,
                            captions=False, size=32)
    column = zarr.open_array(str(out / "columns" / "bulge_fraction"), mode="r+")
    column[3] = 0.999  # row 3's truth no longer what seed 2 draws
    try:
        _script().main([str(out)])
    except SystemExit as stop:
        assert "row 3's truth is not what synth seed 2 draws" in str(stop)
    else:
        raise AssertionError("an altered truth column was read as a synth store's")
