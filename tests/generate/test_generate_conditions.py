"""Every condition source on real files this module writes, every model kind and sampler:

- a FITS table of GZ2 vote fractions (upper-cased, as FITS writers do) and a Kaggle CSV
  of cumulative votes into the GZ2-conditioned latent diffusion model;
- a (redshift, log stellar mass) table into a flux model: a float32 catalog;
- a store recipe that oversamples rare classes by the factor asked;
- img2img from a store's galaxies at a strength;
- base + LoRA weights; the three samplers.
"""

from __future__ import annotations

import numpy as np
import pytest
from gen_helpers import write_config

from galaxy_hpc.data.gz2 import ANSWERS, column_name


def generate(tmp_path, name, **data):
    from galaxy_hpc.generate.config import GenerateConfig
    from galaxy_hpc.generate.job import run_generate
    from hpc.config import load_config
    from hpc.store import open_store

    config = write_config(tmp_path / f"{name}.yaml", {
        "out": str(tmp_path / f"{name}.zarr"), "shard_size": 4, "batch_size": 2,
        "runtime": {"cpu_threads": 1}, **data})
    summary = run_generate(load_config(config, cls=GenerateConfig), progress=False)
    return open_store(summary.out), summary


def ldm(models, kind, steps=3):
    return {"model": {"kind": "ldm", "path": str(models[kind])},
            "sampler": {"name": "dpm_solver++", "steps": steps, "guidance_scale": 2.0}}


def sd(models, sampler="ddim", steps=3):
    return {"model": {"kind": "sd", "path": str(models["sd"])},
            "sampler": {"name": sampler, "steps": steps, "guidance_scale": 2.0}}


def vote_fractions(rows: int, seed: int = 0) -> np.ndarray:
    from galaxy_hpc.data.gz2 import QUESTIONS

    rng = np.random.default_rng(seed)
    fractions = np.zeros((rows, 37))
    for question in QUESTIONS:
        block = rng.dirichlet(np.ones(len(question.answers)), rows)
        fractions[:, question.columns] = block
    return fractions


def test_fits_table_of_gz2_vote_fractions_conditions_the_latent_model(models, tmp_path):
    from astropy.table import Table

    fractions = vote_fractions(6)
    table = Table()
    table["DR7OBJID"] = np.arange(6, dtype=np.int64) + 587722981741363200
    for k, answer in enumerate(ANSWERS):  # FITS writers upper-case column names
        table[column_name(answer).upper()] = fractions[:, k]
    table.write(tmp_path / "votes.fits")
    store, summary = generate(tmp_path, "gz2", **ldm(models, "ldm_gz2"),
                              conditions={"source": "table", "path": str(tmp_path / "votes.fits")})
    assert len(store) == 6 and store.spec.image_shape == (3, 32, 32)
    assert store.spec.image_dtype == "uint8"
    recorded = np.stack([store.read_column(column_name(a)) for a in ANSWERS], axis=1)
    np.testing.assert_array_equal(recorded, fractions)
    assert store.read_column("source_id")[2] == "587722981741363202"
    assert store.attrs["generate"]["conditions"]["columns"][0] == column_name(ANSWERS[0])


def test_kaggle_vote_csv_is_read_as_per_question_fractions(models, tmp_path):
    from astropy.table import Table

    from galaxy_hpc.data.gz2 import fractions_to_kaggle

    fractions = vote_fractions(5, seed=1)
    table = Table()
    table["GalaxyID"] = np.arange(100000, 100005)
    for k, answer in enumerate(ANSWERS):
        table[answer.kaggle] = fractions_to_kaggle(fractions)[:, k]
    table.write(tmp_path / "kaggle.csv", format="ascii.csv")
    store, _ = generate(tmp_path, "kaggle", **ldm(models, "ldm_gz2", steps=2),
                        conditions={"source": "table", "path": str(tmp_path / "kaggle.csv")})
    recorded = np.stack([store.read_column(column_name(a)) for a in ANSWERS], axis=1)
    reached = fractions_to_kaggle(fractions) > 0
    np.testing.assert_allclose(recorded[reached], fractions[reached], atol=1e-6)
    assert store.read_column("source_id").tolist() == [str(100000 + i) for i in range(5)]


def test_redshift_and_stellar_mass_table_makes_a_flux_catalog(models, tmp_path):
    from astropy.table import Table

    rng = np.random.default_rng(2)
    z, mass = rng.uniform(0.02, 0.25, 3), rng.uniform(9.0, 11.5, 3)
    Table({"id": ["a", "b", "c"], "redshift": z, "log_stellar_mass": mass}).write(
        tmp_path / "zm.csv", format="ascii.csv")
    store, summary = generate(tmp_path, "zm", **ldm(models, "ldm_zm"),
                              conditions={"source": "table", "path": str(tmp_path / "zm.csv"),
                                          "per_row": 2})
    assert len(store) == 6 and store.spec.image_dtype == "float32"
    assert store.spec.image_shape == (4, 32, 32)  # the flux model's 4 bands
    np.testing.assert_allclose(store.read_column("redshift"), np.repeat(z, 2))
    np.testing.assert_allclose(store.read_column("log_stellar_mass"), np.repeat(mass, 2))
    images = store.read_images()
    assert np.isfinite(images).all() and images.std() > 0
    assert Table.read(summary.table)["redshift"].tolist() == store.read_column("redshift").tolist()


@pytest.fixture(scope="module")
def rare_store(tmp_path_factory):
    """50 galaxies whose captions say what they are; 4 (8%) are mergers."""
    from hpc.store import StoreSpec, create_store, finalize_store

    out = tmp_path_factory.mktemp("rare") / "rare.zarr"
    captions = ["sdss, spiral galaxy, merger" if i % 12 == 5 else
                ("sdss, elliptical galaxy" if i % 2 else "sdss, spiral galaxy")
                for i in range(50)]
    writer = create_store(out, StoreSpec(image_shape=(3, 32, 32),
                                         columns={"id": "str", "caption": "str"}, shard_size=25),
                          num_items=50)
    rng = np.random.default_rng(3)
    for shard in range(2):
        a, b = writer.shard_bounds(shard)
        writer.write_shard(shard, rng.integers(0, 255, (b - a, 3, 32, 32), dtype=np.uint8),
                           {"id": [f"r{i}" for i in range(a, b)], "caption": captions[a:b]})
    finalize_store(out)
    return out, captions


def test_store_recipe_draws_rare_classes_the_factor_more_often(models, rare_store, tmp_path):
    from galaxy_hpc.generate.config import GenerateConfig
    from galaxy_hpc.generate.job import build_catalog
    from hpc.config import load_config

    path, captions = rare_store
    merger = np.array(["merger" in c for c in captions])
    assert merger.sum() == 4

    def drawn(oversample: float, num: int = 4000) -> np.ndarray:
        config = write_config(tmp_path / "recipe.yaml", {
            "out": str(tmp_path / "unused.zarr"), "num_objects": num, **sd(models),
            "conditions": {"source": "store", "path": str(path), "oversample": oversample}})
        catalog = build_catalog(load_config(config, cls=GenerateConfig))
        return catalog.source, catalog.source.rows_of(np.arange(num))

    plain_source, plain = drawn(1.0)
    source, rows = drawn(5.0)
    assert abs(merger[plain].mean() - 4 / 50) < 0.02
    expected = 4 * 5 / (46 + 4 * 5)  # 0.30
    assert abs(merger[rows].mean() - expected) < 0.03
    report = source.provenance()["oversample"]
    assert report["rare_classes"] == {"merger": 0.08}
    assert report["rare_rows_expected_in_catalog"] == pytest.approx(expected, abs=1e-6)
    # Per object, not per run: the first 100 of 4000 draws are the draws of a 100-object run.
    assert source.rows_of(np.arange(100)).tolist() == rows[:100].tolist()

    store, _ = generate(tmp_path, "recipe", num_objects=12, **sd(models, steps=2),
                        conditions={"source": "store", "path": str(path), "oversample": 5.0})
    assert store.read_column("rare_class").tolist() == \
        ["merger" in c for c in store.read_column("caption").tolist()]
    assert store.read_column("caption").tolist() == \
        [captions[r] for r in store.read_column("source_row").tolist()]


def test_img2img_starts_from_the_store_galaxies_at_the_strength(models, synth_store, tmp_path):
    from hpc.store import StoreSpec, create_store, finalize_store, open_store

    real = open_store(synth_store)
    # The same galaxies and captions, mirrored: only the images the objects start from differ.
    mirrored = tmp_path / "mirrored.zarr"
    writer = create_store(mirrored, StoreSpec(image_shape=real.spec.image_shape,
                                              columns={"id": "str", "caption": "str"},
                                              shard_size=24), num_items=len(real))
    writer.write_shard(0, real.read_images()[..., ::-1],
                       {"id": real.read_column("id"), "caption": real.read_column("caption")})
    finalize_store(mirrored)

    def catalog(name, path, **conditions):
        return generate(tmp_path, name, num_objects=6, **sd(models, steps=4),
                        conditions={"source": "store", "path": str(path), "selection": "each",
                                    **conditions})[0]

    start = catalog("i2i", synth_store, img2img=True, strength=0.5)
    flipped = catalog("i2i-mirrored", mirrored, img2img=True, strength=0.5)
    stronger = catalog("i2i-strong", synth_store, img2img=True, strength=0.9)
    text_only = catalog("t2i", synth_store)
    assert start.read_column("source_id").tolist() == real.read_column("id")[:6].tolist()
    assert start.read_column("caption").tolist() == flipped.read_column("caption").tolist()
    assert set(start.read_column("strength").tolist()) == {0.5}
    assert set(text_only.read_column("strength").tolist()) == {1.0}
    assert start.attrs["generate"]["conditions"]["img2img"] == {"strength": 0.5}
    images = {name: s.read_images() for name, s in
              (("start", start), ("flipped", flipped), ("stronger", stronger), ("text", text_only))}
    for other in ("flipped", "stronger", "text"):
        assert not np.array_equal(images["start"], images[other]), other
    # A caption catalog keeps the GZ2 votes of the rows its captions came from (what
    # `evaluate morphology` compares with); a source without them carries nothing.
    smooth = "t01_smooth_or_features_a01_smooth_fraction"
    np.testing.assert_array_equal(text_only.read_column(smooth), real.read_column(smooth)[:6])
    assert len([c for c in text_only.columns if c.endswith("_fraction")]) == 37
    assert not any(c.endswith("_fraction") for c in flipped.columns)
    assert text_only.attrs["generate"]["conditions"]["carried_columns"][0] == smooth
    chosen = catalog("t2i-z", synth_store, carry_columns=["redshift"])
    assert chosen.read_column("redshift").tolist() == real.read_column("redshift")[:6].tolist()
    assert not any(c.endswith("_fraction") for c in chosen.columns)
    with pytest.raises(ValueError, match="carry_columns: .* has no column 'mass'"):
        catalog("t2i-bad", synth_store, carry_columns=["mass"])


def test_lora_weights_change_the_images_and_both_files_are_recorded(models, captions_csv,
                                                                    tmp_path):
    from galaxy_hpc.generate.hashing import path_sha256

    conditions = {"source": "table", "path": str(captions_csv)}
    base, _ = generate(tmp_path, "base", **sd(models), conditions=conditions)
    lora_model = {"kind": "sd_lora", "path": str(models["lora"]), "base": str(models["sd"])}
    fused, _ = generate(tmp_path, "lora", **{**sd(models), "model": lora_model},
                        conditions=conditions)
    unfused, _ = generate(tmp_path, "lora-unfused",
                          **{**sd(models), "model": {**lora_model, "fuse_lora": False}},
                          conditions=conditions)
    assert not np.array_equal(base.read_images(), fused.read_images())
    # Fused into the weights or applied per step: the same model, up to float rounding.
    gap = np.abs(fused.read_images().astype(int) - unfused.read_images().astype(int))
    assert gap.max() <= 3 and gap.mean() < 0.5
    hashes = fused.attrs["generate"]["fingerprint"]["model"]["sha256"]
    assert hashes == {"base": path_sha256(models["sd"]),
                      "lora": path_sha256(models["lora"] / "pytorch_lora_weights.safetensors")}
    assert fused.read_column("model_hash")[0] != base.read_column("model_hash")[0]


def test_each_sampler_is_reproducible_and_they_differ(models, captions_csv, tmp_path):
    from galaxy_hpc.generate.config import GenerateConfig
    from galaxy_hpc.generate.job import build_catalog
    from hpc.config import load_config

    made = {}
    for sampler in ("ddim", "dpm_solver++", "dpm_solver++_sde", "euler_ancestral"):
        config = write_config(tmp_path / f"{sampler}.yaml", {
            "out": str(tmp_path / "unused.zarr"), **sd(models, sampler=sampler),
            "conditions": {"source": "table", "path": str(captions_csv)}})
        catalog = build_catalog(load_config(config, cls=GenerateConfig))
        provenance = catalog.generator.sampler_provenance()
        assert provenance["class"] == {
            "ddim": "DDIMScheduler", "dpm_solver++": "DPMSolverMultistepScheduler",
            "dpm_solver++_sde": "DPMSolverMultistepScheduler",
            "euler_ancestral": "EulerAncestralDiscreteScheduler"}[sampler]
        if sampler.startswith("dpm"):
            assert provenance["config"]["algorithm_type"] == {
                "dpm_solver++": "dpmsolver++", "dpm_solver++_sde": "sde-dpmsolver++"}[sampler]
        first, _ = catalog.make(np.arange(3))
        again, _ = catalog.make(np.arange(3))
        np.testing.assert_array_equal(first, again)
        made[sampler] = first
    assert not np.array_equal(made["ddim"], made["dpm_solver++"])
    assert not np.array_equal(made["ddim"], made["euler_ancestral"])
    assert not np.array_equal(made["dpm_solver++"], made["dpm_solver++_sde"])


def test_the_config_offers_the_samplers_build_scheduler_knows():
    from typing import get_args, get_type_hints

    from galaxy_hpc.generate.config import SamplerSection
    from galaxy_hpc.models.samplers import SAMPLERS

    assert get_args(get_type_hints(SamplerSection)["name"]) == SAMPLERS


def test_latent_model_takes_the_stochastic_samplers_and_ddim_eta(models, tmp_path):
    """The LDM passes eta to DDIM (it was dropped once: eta 1 drew what eta 0 drew) and
    draws the SDE solver's noise from each object's generator (reproducible)."""
    from astropy.table import Table

    from galaxy_hpc.generate.config import GenerateConfig
    from galaxy_hpc.generate.job import build_catalog
    from hpc.config import load_config

    Table({"redshift": [0.05, 0.1, 0.2], "log_stellar_mass": [9.5, 10.5, 11.0]}).write(
        tmp_path / "zm.csv", format="ascii.csv")
    made = {}
    for name, sampler, eta in (("ddim0", "ddim", 0.0), ("ddim1", "ddim", 1.0),
                               ("ode", "dpm_solver++", 0.0), ("sde", "dpm_solver++_sde", 0.0)):
        spec = ldm(models, "ldm_zm", steps=4)
        spec["sampler"].update(name=sampler, eta=eta)
        config = write_config(tmp_path / f"{name}.yaml", {
            "out": str(tmp_path / "unused.zarr"), **spec,
            "conditions": {"source": "table", "path": str(tmp_path / "zm.csv")}})
        catalog = build_catalog(load_config(config, cls=GenerateConfig))
        first, _ = catalog.make(np.arange(3))
        again, _ = catalog.make(np.arange(3))
        np.testing.assert_array_equal(first, again)
        made[name] = first
    assert np.abs(made["ddim0"] - made["ddim1"]).max() > 1e-3
    assert np.abs(made["ode"] - made["sde"]).max() > 1e-3


def test_an_object_is_what_diffusers_draws_for_its_caption_and_seed(models, captions_csv,
                                                                   tmp_path):
    """With batches of one, the catalog's object equals diffusers' own pipeline called on
    its caption with torch.Generator().manual_seed(its seed): the same latents, the same
    ancestral noise stream, the same guidance; only batching may round differently."""
    import torch
    from diffusers import StableDiffusionPipeline

    from galaxy_hpc.generate.config import GenerateConfig
    from galaxy_hpc.generate.job import build_catalog
    from galaxy_hpc.models.samplers import build_scheduler
    from hpc.config import load_config

    config = write_config(tmp_path / "one.yaml", {
        "out": str(tmp_path / "unused.zarr"), "batch_size": 1, "runtime": {"cpu_threads": 1},
        **sd(models, sampler="euler_ancestral", steps=4),
        "conditions": {"source": "table", "path": str(captions_csv)}})
    cfg = load_config(config, cls=GenerateConfig)
    ours, columns = build_catalog(cfg).make(np.array([4]))
    pipe = StableDiffusionPipeline.from_pretrained(models["sd"], safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.scheduler = build_scheduler(cfg.sampler, pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(str(columns["caption"][0]), num_inference_steps=4, guidance_scale=2.0,
                  generator=torch.Generator().manual_seed(int(columns["seed"][0])),
                  output_type="np").images
    theirs = (np.clip(theirs, 0, 1) * 255).round().astype(np.uint8).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(ours, theirs)


def test_condition_mistakes_name_the_file_and_column(models, captions_csv, synth_store,
                                                    tmp_path):
    with pytest.raises(ValueError, match=r"captions.csv: no column\(s\) redshift, log_stellar"):
        generate(tmp_path, "bad-columns", **ldm(models, "ldm_zm"),
                 conditions={"source": "table", "path": str(captions_csv)})
    with pytest.raises(ValueError, match="num_objects 100 is more than the 6 rows"):
        generate(tmp_path, "too-many", num_objects=100, **sd(models),
                 conditions={"source": "table", "path": str(captions_csv)})
    with pytest.raises(ValueError, match="img2img: model kind 'ldm' cannot"):
        generate(tmp_path, "ldm-i2i", num_objects=2, **ldm(models, "ldm_zm"),
                 conditions={"source": "store", "path": str(synth_store), "img2img": True})


def test_a_gan_catalog_is_the_generators_own_output_for_each_seed(models, tmp_path):
    from astropy.table import Table

    from galaxy_hpc.models.gan.generator import load_generator

    rng = np.random.default_rng(5)
    z, mass = rng.uniform(0.02, 0.25, 5), rng.uniform(9.0, 11.5, 5)
    Table({"id": list("abcde"), "redshift": z, "log_stellar_mass": mass}).write(
        tmp_path / "zm.csv", format="ascii.csv")
    conditions = {"source": "table", "path": str(tmp_path / "zm.csv")}
    gan = {"model": {"kind": "gan", "path": str(models["gan"]), "options": {"batch_size": 4}}}
    store, summary = generate(tmp_path, "gan", **gan, conditions=conditions)
    assert len(store) == 5 and store.spec.image_dtype == "float32"
    assert store.spec.image_shape == (4, 32, 32)
    seeds = store.read_column("seed").astype(np.int64)
    direct = load_generator(models["gan"]).generate(np.stack([z, mass], axis=1),
                                                    seeds.tolist(), batch_size=4)
    np.testing.assert_array_equal(store.read_images(), direct)
    again, _ = generate(tmp_path, "gan_again", **gan, conditions=conditions)
    assert again.checksum == store.checksum
    assert Table.read(summary.table)["log_stellar_mass"].tolist() == mass.tolist()
    with pytest.raises(ValueError, match="makes 32x32 images only"):
        generate(tmp_path, "gan_size", **gan, conditions=conditions, size=64)


def test_a_catalog_carries_the_class_of_each_objects_source_row(models, tmp_path):
    """A store with a text `label` column (class folders, Galaxy10's named codes): each
    object carries its row's label, in the store and the FITS table (astropy reads it),
    and the report's per-class grids pair real and generated galaxies by it."""
    from astropy.table import Table
    from support.stores import write_array_store

    from galaxy_hpc.evaluate.report.grids import classes
    from hpc.store import open_store

    labels = ["barred spiral", "merging", "round smooth"]
    rng = np.random.default_rng(1)
    source = write_array_store(
        tmp_path / "source.zarr", rng.integers(0, 255, (9, 3, 32, 32), dtype=np.uint8),
        {"id": [f"g{i}" for i in range(9)], "caption": [f"sdss, {labels[i % 3]}"
                                                          for i in range(9)],
         "label": [labels[i % 3] for i in range(9)]}, shard_size=9)
    real_classes = classes(open_store(source))  # a zarr text column: numpy's StringDType
    assert list(real_classes) == [labels[i % 3] for i in range(9)]
    store, summary = generate(tmp_path, "labelled", num_objects=6, **sd(models, steps=2),
                              conditions={"source": "store", "path": str(source),
                                          "selection": "sample"})
    rows = store.read_column("source_row").tolist()
    assert list(store.read_column("label")) == [labels[r % 3] for r in rows]
    assert list(classes(store)) == [labels[r % 3] for r in rows]
    table = Table.read(summary.table)
    assert [str(v).strip() for v in table["label"]] == [labels[r % 3] for r in rows]
