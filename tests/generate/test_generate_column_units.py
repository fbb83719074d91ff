"""The catalog FITS table as astronomers' tools see it, read in a process that never
imports galaxy_hpc: a unit (TUNITn) where one is known, a description (TCOMMn) on every
column, a comment on every header card; astropy alone reads the units back."""

from __future__ import annotations

import subprocess

from gen_helpers import ENV, write_config
from plain_readers import run_plain

CARRIED = ["flux_r", "half_light_radius_arcsec", "t01_smooth_or_features_a01_smooth_fraction"]


def assert_every_column_described(seen: dict) -> None:
    assert seen["uncommented"] == []
    for name, cards in seen["plain_columns"].items():
        assert cards["TCOMM"], name
        assert cards == seen["astropy_header"][name], name
        assert seen["astropy"][name]["description"] == cards["TCOMM"], name


def test_conditioned_catalog_has_units_from_its_source_store(galaxy_hpc, models, synth_store,
                                                             tmp_path):
    """A GAN conditioned on (redshift, log stellar mass) of a synthetic store, carrying
    three more of its columns: units and descriptions come from that store."""
    config = write_config(tmp_path / "gan.yaml", {
        "out": str(tmp_path / "gan.zarr"), "num_objects": 4, "shard_size": 4,
        "runtime": {"cpu_threads": 1},
        "model": {"kind": "gan", "path": str(models["gan"]), "options": {"batch_size": 4}},
        "conditions": {"source": "store", "path": str(synth_store), "carry_columns": CARRIED}})
    done = subprocess.run([galaxy_hpc, "generate", str(config), "--json"], capture_output=True,
                          text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    seen = run_plain("fits", tmp_path / "gan.fits")
    assert_every_column_described(seen)
    units = {name: cards["TUNIT"] for name, cards in seen["plain_columns"].items()}
    assert units["redshift"] == "" and units["log_stellar_mass"] == "log(solMass)"
    assert units["flux_r"] == "nanomaggy" and units["half_light_radius_arcsec"] == "arcsec"
    assert units[CARRIED[2]] == "" and units["guidance_scale"] == ""
    assert units["id"] is None and units["seed"] is None  # no unit applies
    astropy = seen["astropy"]
    assert astropy["log_stellar_mass"]["unit"] == "log(solMass)"
    assert astropy["flux_r"]["unit"] == "nanomaggy"
    assert astropy["half_light_radius_arcsec"]["unit"] == "arcsec"
    comments = {name: cards["TCOMM"] for name, cards in seen["plain_columns"].items()}
    assert comments["redshift"] == "condition: redshift of the galaxy"
    assert comments["flux_r"].startswith("source row: true total r-band flux")
    assert comments[CARRIED[2]] == "source row: Q1 vote share for 'smooth'"
    assert comments["id"] == "gen-<catalog seed>-<index>"
    assert "MODSHAn" in comments["model_hash"]
    keys = {card["key"] for card in seen["plain"]}
    assert {"MODSHA0", "MODROLE0", "STORESUM", "PROVJSON"} <= keys
    assert {f"TCOMM{n}" for n in range(1, len(units) + 1)} <= keys


def test_text_catalog_of_the_reference_run(reference):
    seen = run_plain("fits", reference["table"])
    assert_every_column_described(seen)
    assert seen["plain_columns"]["strength"]["TUNIT"] == ""
    assert seen["plain_columns"]["caption"]["TUNIT"] is None
    sha = next(card for card in seen["plain"] if card["key"] == "MODSHA0")
    store = reference["store"]
    assert sha["value"] == store.attrs["generate"]["fingerprint"]["model"]["sha256"]["pipeline"]
    assert sha["comment"] == "sha256 of the model's pipeline (file or folder)"
