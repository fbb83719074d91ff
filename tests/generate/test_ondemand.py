"""On-demand drawing (galaxy_hpc.generate.ondemand) gives the catalog's galaxies: the same
seed and rows, drawn in one batch as the catalog drew its batch, are the same bytes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from gen_helpers import write_config

from galaxy_hpc.generate.config import GenerateConfig, RuntimeSection, SamplerSection
from galaxy_hpc.generate.ondemand import DrawRequest, load_ondemand, model_section_for

PROMPT = "sdss, spiral galaxy, merger"
SAMPLER = {"name": "euler_ancestral", "steps": 3, "guidance_scale": 3.0}


def _catalog(tmp_path, data):
    from galaxy_hpc.generate.job import run_generate
    from hpc.config import load_config
    from hpc.store import open_store

    config = write_config(tmp_path / "catalog.yaml", data)
    summary = run_generate(load_config(config, cls=GenerateConfig), progress=False)
    store = open_store(summary.out)
    return store.read_images(), store


def test_sd_prompt_matches_the_catalog(models, captions_csv, tmp_path):
    images, store = _catalog(tmp_path, {
        "out": str(tmp_path / "c.zarr"), "seed": 11, "shard_size": 6, "batch_size": 6,
        "model": {"kind": "sd", "path": str(models["sd"])}, "sampler": SAMPLER,
        "conditions": {"source": "table", "path": str(captions_csv), "prompt": PROMPT},
        "runtime": {"cpu_threads": 1}})
    model = load_ondemand(model_section_for(str(models["sd"])), SamplerSection(**SAMPLER),
                          RuntimeSection(cpu_threads=1))
    assert model.kind == "sd"
    [drawn] = model.draw([DrawRequest(n=6, seed=11, prompt=PROMPT)])
    assert drawn.images.shape == images.shape
    np.testing.assert_array_equal(drawn.images, images)
    np.testing.assert_array_equal(drawn.seeds, store.read_column("seed"))
    # Another seed is another galaxy; fewer steps and a size change are honoured.
    [other] = model.draw([DrawRequest(n=1, seed=12, prompt=PROMPT, steps=2, size=48)])
    assert other.images.shape == (1, 3, 48, 48)
    assert model.generator.size == 32  # put back after the call


def test_gan_rows_match_the_catalog(models, tmp_path):
    rows = [(0.05, 10.0), (0.1, 10.5), (0.2, 11.0), (0.15, 9.8)]
    table = tmp_path / "rows.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["redshift", "log_stellar_mass"])
        writer.writerows(rows)
    images, _ = _catalog(tmp_path, {
        "out": str(tmp_path / "g.zarr"), "seed": 5, "shard_size": 4, "batch_size": 4,
        "model": {"kind": "gan", "path": str(models["gan"])},
        "conditions": {"source": "table", "path": str(table)}, "runtime": {"cpu_threads": 1}})
    model = load_ondemand(model_section_for(str(models["gan"])), None,
                          RuntimeSection(cpu_threads=1))
    assert model.kind == "gan"
    drawn = model.draw([DrawRequest(n=1, seed=5, start=i,
                                    conditions={"redshift": z, "log_stellar_mass": m})
                        for i, (z, m) in enumerate(rows)])
    np.testing.assert_array_equal(np.concatenate([d.images for d in drawn]), images)
    assert drawn[0].display.dtype == np.uint8 and drawn[0].display.shape == (1, 3, 32, 32)


def test_bad_requests_name_the_field(models):
    model = load_ondemand(model_section_for(str(models["gan"])), None,
                          RuntimeSection(cpu_threads=1))
    with pytest.raises(ValueError, match="prompt"):
        model.check(DrawRequest(prompt="a galaxy"))
    with pytest.raises(ValueError, match="missing: log_stellar_mass"):
        model.check(DrawRequest(conditions={"redshift": 0.1}))
    with pytest.raises(ValueError, match="size"):
        model.check(DrawRequest(conditions={"redshift": 0.1, "log_stellar_mass": 10},
                                size=64))
    with pytest.raises(ValueError, match="needs the base pipeline folder .* records no base"):
        model_section_for(str(models["lora"]))  # a LoRA from elsewhere: no base.json
    assert model_section_for(str(models["lora"]), base=str(models["sd"])).kind == "sd_lora"
    assert model_section_for(str(models["ldm_zm"])).kind == "ldm"


def test_sample_command_draws_base_against_lora(models, tmp_path, capsys):
    from PIL import Image

    from galaxy_hpc.cli.main import main

    out = tmp_path / "grid.png"
    status = main(["sample", str(models["lora"]), "--base", str(models["sd"]), "--prompt", PROMPT,
                   "--n", "3", "--seed", "4", "--steps", "2", "--device", "cpu",
                   "--out", str(out), "--json"])
    assert status == 0
    pixels = np.asarray(Image.open(out))
    assert pixels.shape == (64, 96, 3)  # a base row and a LoRA row of 3 tiles of 32 px
    base, tuned = pixels[:32], pixels[32:]
    assert base.std() > 0 and not np.array_equal(base, tuned)  # the LoRA changes the galaxy
    assert json.loads(capsys.readouterr().out)["rows"] == ["base", "sd_lora"]
    status = main(["sample", str(models["gan"]), "--conditions", "redshift=0.1,log_stellar_mass",
                   "--out", str(tmp_path / "g.png")])
    assert status == 1  # one-line error: the condition has no value
    assert "NAME=NUMBER" in capsys.readouterr().err


def test_ldm_flux_draws_and_displays_through_its_stretch(models):
    model = load_ondemand(model_section_for(str(models["ldm_zm"])),
                          SamplerSection(name="ddim", steps=2), RuntimeSection(cpu_threads=1))
    [drawn] = model.draw([DrawRequest(n=2, seed=1, conditions={"redshift": 0.1,
                                                                "log_stellar_mass": 10.5})])
    assert drawn.images.shape == (2, 4, 32, 32) and drawn.images.dtype == np.float32
    assert model.stretch is not None  # flux: shown through the stretch it was trained with
    assert drawn.display.shape == (2, 3, 32, 32) and drawn.display.dtype == np.uint8
