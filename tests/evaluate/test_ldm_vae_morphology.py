"""benchmarks/ldm_vae_morphology.py reads the predictor's held-out galaxies, and what it
prints for them is what the predictor and the VAE give, computed here without it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

from galaxy_hpc.data.gz2 import QUESTIONS, normalise_per_question
from galaxy_hpc.data.split import heldout_mask
from galaxy_hpc.data.stretch import Uint8Stretch
from galaxy_hpc.evaluate.inputs import model_pixels
from galaxy_hpc.evaluate.morphology import vote_columns
from galaxy_hpc.models.ldm.images import write_vae_info
from galaxy_hpc.models.ldm.vae_family import latent_statistics
from galaxy_hpc.models.vote_predictor import MANIFEST, load_vote_predictor
from hpc.store import open_store
from support.predictors import random_vote_predictor

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ldm_vae_morphology.py"
HELD_OUT = {"fraction": 0.3, "seed": 5}


def _script():
    spec = importlib.util.spec_from_file_location("ldm_vae_morphology", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_it_scores_the_heldout_galaxies_and_their_reconstructions(stores, tmp_path, capsys):
    from diffusers import AutoencoderKL

    store = open_store(stores["real"])
    predictor = random_vote_predictor(tmp_path / "predictor", head_std=0.05)
    manifest = json.loads((predictor / MANIFEST).read_text())
    manifest["heldout"] = {**HELD_OUT, "store_checksum": store.checksum}
    (predictor / MANIFEST).write_text(json.dumps(manifest))
    torch.manual_seed(0)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 8),
                        layers_per_block=1, norm_num_groups=4, sample_size=32).eval()
    vae.save_pretrained(tmp_path / "vae")
    write_vae_info(tmp_path / "vae", {"stretch": {"kind": "uint8"}})

    result = _script().main([str(tmp_path / "vae"), str(predictor), "--store",
                             str(stores["real"]), "--batch-size", "7"])

    held = np.flatnonzero(heldout_mask(len(store), **HELD_OUT))
    assert result["num_galaxies"] == len(held) > 10
    truth = normalise_per_question(np.stack(
        [store.read_column(c)[held] for c in vote_columns(store, "fraction")], axis=1))
    images = store.read_images_at(held)
    read = load_vote_predictor(predictor).predict_fractions(
        model_pixels(images, Uint8Stretch(), 32)).double().numpy()
    q1 = QUESTIONS[0].columns  # every galaxy reaches Q1: all count
    assert np.isclose(result["real"]["q1_mae"], np.abs(truth[:, q1] - read[:, q1]).mean())
    assert np.isclose(result["real"]["q1_r"], np.corrcoef(truth[:, 0], read[:, 0])[0, 1])
    assert result["real"]["question_mae"]["1"] == result["real"]["q1_mae"]
    odd = QUESTIONS[5].columns  # every galaxy reaches Q6 (odd) too
    assert np.isclose(result["real"]["question_mae"]["6"],
                      np.abs(truth[:, odd] - read[:, odd]).mean())
    x = Uint8Stretch().forward(images).astype(np.float32)
    l1 = latent_statistics(vae, x, device=torch.device("cpu"))["reconstruction_l1"]
    assert np.isclose(result["vae_l1"], l1, rtol=1e-5)
    # A random VAE draws no galaxy: what the predictor reads off its output differs.
    assert result["reconstructed"]["q1_mae"] != result["real"]["q1_mae"]
    assert "reconstructed" in capsys.readouterr().out
