"""`evaluate conditioning` measures generated images as the survey would see them: the
synthetic survey's own galaxies drawn without pixel noise (the perfect generator of a
noise-free galaxy: the same rows, the same light) against the noisy store. As drawn, their
half-light radii read large in nearly every cell; with the real store's noise added first
(match_noise, the default) every judged size cell is far inside the floor. The reported
real noise is the synthetic sky's known sigma; two ranks add the same noise as one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from support.stores import synth_with_and_without_noise

from galaxy_hpc.data.synth.config import SynthConfig
from galaxy_hpc.data.synth.render import band_noise

NUM_GALAXIES = 900
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "evaluate" / "conditioning.yaml"


@pytest.fixture(scope="module")
def stores(galaxy_hpc, tmp_path_factory):
    root = tmp_path_factory.mktemp("noise_match")
    return synth_with_and_without_noise(galaxy_hpc, root, NUM_GALAXIES, "--float")


def conditioning(command, stores, *settings, env=None):
    done = subprocess.run([*command, "evaluate", "conditioning", str(CONFIG),
                           f"generated={stores['clean']}", f"real={stores['noisy']}",
                           *settings, "--json"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def matched(galaxy_hpc, stores):
    return conditioning([galaxy_hpc], stores)


def sizes(result):
    """{cell: (median generated, median real, W1/floor)} of the judged size cells."""
    return {tuple(cell["bins"]): (q["median_generated"], q["median_real"], q["w1_over_floor"])
            for cell in result["fidelity"]["cells"]
            for q in [cell["quantities"]["half_light_radius"]] if q["status"] != "sparse"}


def test_noise_free_galaxies_read_large_as_drawn_and_within_the_floor_when_matched(
        galaxy_hpc, stores, matched):
    drawn = conditioning([galaxy_hpc], stores, "match_noise=false")
    as_drawn, with_noise = sizes(drawn), sizes(matched)
    assert len(as_drawn) >= 6 and as_drawn.keys() == with_noise.keys()
    larger = [cell for cell, (gen, real, _) in as_drawn.items() if gen > real]
    assert len(larger) >= len(as_drawn) - 1  # as drawn: larger nearly everywhere
    assert np.mean([ratio for *_, ratio in as_drawn.values()]) > 0.6
    # Matched, the same galaxies differ only by the noise's own draw: far inside the floor.
    assert max(ratio for *_, ratio in with_noise.values()) < 0.5
    assert np.mean([abs(gen - real) for gen, real, _ in with_noise.values()]) < \
        0.5 * np.mean([abs(gen - real) for gen, real, _ in as_drawn.values()])
    assert drawn["pixel_noise"]["added"] is None


def test_the_reported_noise_is_the_synthetic_skys_and_what_the_clean_images_lacked(matched):
    sky, _ = band_noise(SynthConfig())  # the sigma the noisy store was drawn with, per band
    noise = matched["pixel_noise"]
    assert noise["matched"] and noise["real"] == pytest.approx(sky, rel=0.05)
    assert all(g < 0.1 * s for g, s in zip(noise["generated"], sky))
    assert noise["added"] == pytest.approx(sky, rel=0.05)


@pytest.mark.mpi
def test_two_ranks_add_the_noise_of_one(galaxy_hpc, mpiexec, stores, matched, subprocess_env):
    two = conditioning([mpiexec, "-n", "2", galaxy_hpc], stores, env=subprocess_env)
    assert two["num_ranks"] == 2
    assert two["pixel_noise"] == matched["pixel_noise"]
    assert sizes(two) == sizes(matched)
