"""Morphology consistency through the VotePredictor interface, with a small predictor made
here: per-question r and MAE equal numpy's on the same predictions, a catalog that asked
for exactly what the predictor sees scores r = 1 and MAE = 0, and the CLI loads the
predictor from its folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

import eval_tiny_predictor
from galaxy_hpc.cli.main import main
from galaxy_hpc.data.gz2 import ANSWERS, QUESTIONS, column_name
from galaxy_hpc.data.stretch import Uint8Stretch
from galaxy_hpc.evaluate.config import MorphologyConfig
from galaxy_hpc.evaluate.inputs import model_pixels
from galaxy_hpc.evaluate.morphology import run_morphology
from hpc.store import StoreSpec, create_store, finalize_store, open_store


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return eval_tiny_predictor.save(tmp_path_factory.mktemp("predictor") / "tiny", 3, 32)


def predictions(folder, store):
    import torch

    model = eval_tiny_predictor.load(folder, torch.device("cpu"))
    pixels = model_pixels(store.read_images(), Uint8Stretch(), model.image_size)
    return eval_tiny_predictor.reference_predictions(model, pixels.numpy())


def pearson_and_mae(requested, predicted, columns):
    reached = requested[:, columns].sum(axis=1) > 0
    x, y = requested[reached][:, columns].ravel(), predicted[reached][:, columns].ravel()
    return np.corrcoef(x, y)[0, 1], np.abs(x - y).mean()


def test_scores_equal_numpy_on_the_same_predictions(stores, predictor):
    generated = open_store(stores["generated"])
    result = run_morphology(MorphologyConfig(generated=str(stores["generated"]),
                                             predictor=str(predictor), batch_size=24),
                            show_progress=False).to_dict()
    requested = np.stack([generated.read_column(column_name(a)) for a in ANSWERS], axis=1)
    predicted = predictions(predictor, generated)
    for q, scored in zip(QUESTIONS, result["generated_scores"]["questions"]):
        r, mae = pearson_and_mae(requested, predicted, q.columns)
        assert scored["question"] == q.number
        assert scored["r"] == pytest.approx(r, rel=1e-9, abs=1e-12)
        assert scored["mae"] == pytest.approx(mae, rel=1e-9)
    assert result["predictor_image_size"] == 32 and result["num_generated"] == len(generated)


def test_a_catalog_that_asked_for_what_the_predictor_sees_scores_perfectly(stores, predictor,
                                                                          tmp_path, capsys):
    source = open_store(stores["generated"])
    predicted = predictions(predictor, source)
    columns = {column_name(a): "float64" for a in ANSWERS}
    out = tmp_path / "asked.zarr"
    spec = StoreSpec(image_shape=source.spec.image_shape, image_dtype="uint8", columns=columns,
                     shard_size=32)
    writer = create_store(out, spec, num_items=len(source), attrs={"source": "test"})
    for shard in range(writer.num_shards):
        a, b = writer.shard_bounds(shard)
        writer.write_shard(shard, source.read_images(a, b),
                           {name: predicted[a:b, k] for k, name in enumerate(columns)})
    finalize_store(out)
    assert main(["evaluate", "morphology", str(out), str(predictor), "--real",
                 str(stores["real"]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for scored in result["generated_scores"]["questions"]:
        assert scored["mae"] == pytest.approx(0.0, abs=1e-6)
        assert scored["r"] == pytest.approx(1.0, abs=1e-6)
    # On the real store the same predictor knows nothing of the true votes.
    assert result["real_scores"]["overall"]["mae"] > 0.05
    assert result["num_real"] == 96


def test_missing_vote_columns_name_the_store(predictor, tmp_path, capsys):
    spec = StoreSpec(image_shape=(3, 16, 16), image_dtype="uint8", columns={"id": "str"},
                     shard_size=4)
    out = tmp_path / "plain.zarr"
    writer = create_store(out, spec, num_items=4)
    writer.write_shard(0, np.zeros((4, 3, 16, 16), np.uint8), {"id": ["a", "b", "c", "d"]})
    finalize_store(out)
    assert main(["evaluate", "morphology", str(out), str(predictor)]) == 1
    err = capsys.readouterr().err
    assert str(out) in err and "t01_smooth_or_features_a01_smooth_fraction" in err
