"""A model folder that is there but damaged (a file cut short by a full disk or an
interrupted copy, a component missing): `galaxy-hpc sample`, `generate` and `serve` all
load through galaxy_hpc.generate.loader, and each damage must end in the CLI's one-line
error naming the damaged file (or the folder it is missing from), not a traceback from
inside diffusers or safetensors, and never an image.

The models are the generation tests' tiny real ones (conftest.models); each test cuts its
own copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from galaxy_hpc.cli.main import main

CONDITIONS = "redshift=0.1,log_stellar_mass=10.5"
# (model, file cut short or removed, what the error must name)
CASES = [
    ("ldm_zm", "model_index.json", "model_index.json"),
    ("ldm_zm", "scheduler/scheduler_config.json", "scheduler/scheduler_config.json"),
    ("ldm_zm", "unet/config.json", "unet/config.json"),
    ("ldm_zm", "unet/diffusion_pytorch_model.safetensors",
     "unet/diffusion_pytorch_model.safetensors"),
    ("ldm_zm", "-condition_encoder/diffusion_pytorch_model.safetensors", "condition_encoder"),
    ("sd", "scheduler/scheduler_config.json", "scheduler/scheduler_config.json"),
    ("sd", "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"),
    ("sd", "text_encoder/config.json", "text_encoder/config.json"),
    ("sd", "text_encoder/model.safetensors", "text_encoder/model.safetensors"),
    ("lora", "pytorch_lora_weights.safetensors", "pytorch_lora_weights.safetensors"),
    ("gan", "generator.json", "generator.json"),
    ("gan", "generator.safetensors", "generator.safetensors"),
]


def cut_short(file: Path) -> None:
    """Keep the first third of the file, as a copy that ran out of disk does."""
    data = file.read_bytes()
    assert len(data) > 30, file
    file.write_bytes(data[: len(data) // 3])


def sample_args(kind: str, folder: Path, out: Path, models: dict) -> list[str]:
    args = ["sample", str(folder), "--n", "1", "--steps", "2", "--device", "cpu",
            "--out", str(out)]
    if kind == "lora":
        return [*args, "--base", str(models["sd"]), "--prompt", "sdss, spiral galaxy"]
    if kind == "sd":
        return [*args, "--prompt", "sdss, spiral galaxy"]
    return [*args, "--conditions", CONDITIONS]


@pytest.mark.parametrize("model, damaged, named", CASES,
                         ids=[f"{m}-{d.lstrip('-')}" for m, d, _ in CASES])
def test_sample_names_the_damaged_file(models, tmp_path, capsys, model, damaged, named):
    folder = shutil.copytree(models[model], tmp_path / model)
    if damaged.startswith("-"):
        (folder / damaged[1:]).unlink()
    else:
        cut_short(folder / damaged)
    out = tmp_path / "grid.png"

    status = main(sample_args(model, folder, out, models))

    err = capsys.readouterr().err
    assert status == 1, err
    line = [text for text in err.splitlines() if text.startswith("galaxy-hpc sample: error:")]
    assert line, err  # the one-line error (a traceback would have raised out of main)
    assert str(folder / named) in line[0], line[0]
    assert not out.exists()


def test_the_undamaged_copies_draw(models, tmp_path):
    """The same copies, undamaged, draw: the failures above are the damage's."""
    for model in ("ldm_zm", "sd", "lora", "gan"):
        folder = shutil.copytree(models[model], tmp_path / model)
        out = tmp_path / f"{model}.png"
        assert main(sample_args(model, folder, out, models)) == 0
        assert out.stat().st_size > 0


@pytest.mark.parametrize("damaged", ["head.safetensors", "backbone/model.safetensors",
                                     "backbone/config.json", "predictor.json"])
def test_vote_predictor_names_the_damaged_file(tmp_path, damaged):
    """predict, caption --predictor and evaluate morphology load predictors here."""
    from support.predictors import random_vote_predictor

    from galaxy_hpc.models.vote_predictor import load_vote_predictor

    folder = random_vote_predictor(tmp_path / "predictor")
    load_vote_predictor(folder)  # whole, it loads
    cut_short(folder / damaged)
    with pytest.raises(ValueError) as error:
        load_vote_predictor(folder)
    assert str(folder / damaged) in str(error.value)
