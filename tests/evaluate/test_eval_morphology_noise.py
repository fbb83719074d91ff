"""`evaluate morphology-fidelity` reads generated galaxies as the survey would show them:
the synthetic survey's own galaxies drawn without pixel noise (the same rows, the same
light, the same votes) judged against the noisy store, in linear flux. The predictor here
reads noise on purpose (its smooth-vs-features answer is the image's pixel-scale
roughness), so a noise-free catalog reads far off the real one as drawn, and like it once
the real store's noise is added (match_noise, the default). The reported real noise is the
synthetic sky's known sigma. uint8 composites are read as drawn, and the result says why
(galaxy_hpc.data.pixel_noise.matchable)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import galaxy_hpc.models.vote_predictor as vote_predictor
from galaxy_hpc.data.gz2 import NUM_ANSWERS, QUESTIONS
from galaxy_hpc.data.pixel_noise import NOT_MATCHABLE
from galaxy_hpc.data.stretch import estimate_asinh_stretch
from galaxy_hpc.data.synth.config import SynthConfig
from galaxy_hpc.data.synth.render import band_noise
from galaxy_hpc.evaluate.config import MorphologyFidelityConfig
from galaxy_hpc.evaluate.morphology_fidelity import run_morphology_fidelity
from hpc.store import open_store
from support.predictors import random_vote_predictor
from support.stores import synth_with_and_without_noise

NUM_GALAXIES = 256
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "evaluate" / "morphology_fidelity.yaml"


@pytest.fixture(scope="module")
def stores(galaxy_hpc, tmp_path_factory):
    root = tmp_path_factory.mktemp("morphology_noise")
    made = {**synth_with_and_without_noise(galaxy_hpc, root, NUM_GALAXIES, "--float"),
            **synth_with_and_without_noise(galaxy_hpc, root, NUM_GALAXIES, suffix="_uint8")}
    # The predictor's stretch is the one a training run on the float store would record.
    stretch = estimate_asinh_stretch(open_store(made["noisy"]).read_images()).to_dict()
    made["predictor"] = random_vote_predictor(root / "predictor", head_std=0.05,
                                              stretch=stretch)
    made["predictor_uint8"] = random_vote_predictor(root / "predictor_uint8", head_std=0.05)
    return made


class NoiseReader(torch.nn.Module):
    """A vote predictor whose Q1 answer is the pixel-scale roughness of the image: P(smooth)
    grows with the mean |difference| of horizontal neighbours. Every other question: a
    uniform split (the same for any image)."""

    image_size = 32

    def predict_fractions(self, pixels: torch.Tensor) -> torch.Tensor:
        rough = (pixels[..., 1:] - pixels[..., :-1]).abs().mean(dim=(1, 2, 3))
        out = torch.zeros(len(pixels), NUM_ANSWERS)
        for q in QUESTIONS:
            columns = range(NUM_ANSWERS)[q.columns]
            out[:, list(columns)] = 1.0 / len(columns)
        smooth = torch.clamp(rough * 5.0, 0.0, 1.0)
        out[:, 0], out[:, 1], out[:, 2] = smooth, 1.0 - smooth, 0.0
        return out


@pytest.fixture
def noise_reader(monkeypatch):
    monkeypatch.setattr(vote_predictor, "load_vote_predictor",
                        lambda folder, device=None: NoiseReader())


def judged(stores, match_noise):
    cfg = MorphologyFidelityConfig(generated=str(stores["clean"]), real=str(stores["noisy"]),
                                   predictor=str(stores["predictor"]), min_reach=0.0,
                                   floor_galaxies="all", match_noise=match_noise)
    return run_morphology_fidelity(cfg, show_progress=False).to_dict()


def mean_smooth(result, side):
    """The mean P(smooth) the predictor read off a store's counted galaxies (the
    calibration's per-bin counts and means of answer a01)."""
    answer = result["calibration"][side][0]
    count = np.array(answer["count"], dtype=np.float64)
    mean = np.nan_to_num(np.array(answer["mean_predicted"], dtype=np.float64))
    return float((count * mean).sum() / count.sum())


def test_a_noise_free_catalog_reads_unlike_the_real_one_as_drawn_and_like_it_when_matched(
        stores, noise_reader):
    drawn, matched = judged(stores, False), judged(stores, True)
    real = mean_smooth(drawn, "real")
    assert mean_smooth(matched, "real") == real  # the real store is read as it is
    # As drawn the reader calls the noise-free galaxies far smoother than the real ones
    # (the same galaxies, the same votes); matched they differ by the noise's own draw.
    assert real - mean_smooth(drawn, "generated") > 0.2
    assert mean_smooth(matched, "generated") == pytest.approx(real, abs=0.01)
    q1 = [[q for q in result["questions"] if q["question"] == 1][0]
          for result in (drawn, matched)]
    assert abs(q1[1]["mae"] - q1[1]["floor"]) < 0.5 * abs(q1[0]["mae"] - q1[0]["floor"])
    assert drawn["pixel_noise"]["matched"] is False and drawn["pixel_noise"]["added"] is None
    assert matched["pixel_noise"]["matched"] is True


def cli(galaxy_hpc, stores, kind="", *settings):
    done = subprocess.run([galaxy_hpc, "evaluate", "morphology-fidelity", str(CONFIG),
                           f"generated={stores['clean' + kind]}",
                           f"real={stores['noisy' + kind]}",
                           f"predictor={stores['predictor' + kind]}",
                           "min_reach=0", *settings, "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_reported_noise_is_the_synthetic_skys_and_what_the_clean_images_lacked(
        galaxy_hpc, stores):
    noise = cli(galaxy_hpc, stores)["pixel_noise"]
    sky, _ = band_noise(SynthConfig())  # the sigma the noisy store was drawn with, per band
    assert noise["matched"] and noise["real"] == pytest.approx(sky, rel=0.05)
    assert all(g < 0.1 * s for g, s in zip(noise["generated"], sky))
    assert noise["added"] == pytest.approx(noise["real"], rel=0.02)


def test_uint8_composites_are_read_as_drawn_saying_why(galaxy_hpc, stores):
    """Their noise went through the survey's stretch: Gaussian noise added to the stored
    values is not it (a DINOv2 regressor read the noise-free synthetic galaxies at
    0.87-1.01x its floor as drawn, 1.0-4.2x with such noise)."""
    default, drawn = cli(galaxy_hpc, stores, "_uint8"), cli(galaxy_hpc, stores, "_uint8",
                                                             "match_noise=false")
    noise = default["pixel_noise"]
    assert not noise["matched"] and noise["added"] is None
    assert noise["not_matched_because"] == NOT_MATCHABLE
    assert "not_matched_because" not in drawn["pixel_noise"]  # turned off: no reason owed
    assert default["questions"] == drawn["questions"]


def test_a_catalog_in_other_pixel_units_is_refused_when_matching(galaxy_hpc, stores,
                                                                 tmp_path):
    flux = tmp_path / "flux.zarr"
    subprocess.run([galaxy_hpc, "synth", "--n", "8", "--size", "32", "--float",
                    "--no-captions", "--out", str(flux)], check=True, capture_output=True,
                   timeout=300)
    done = subprocess.run([galaxy_hpc, "evaluate", "morphology-fidelity", str(CONFIG),
                           f"generated={flux}", f"real={stores['noisy_uint8']}",
                           f"predictor={stores['predictor_uint8']}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert f"match_noise: {flux} holds 3-band float32 images" in done.stderr, done.stderr[-2000:]
