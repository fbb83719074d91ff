"""Stores written by `galaxy-hpc synth` carry each column's unit and description where
plain zarr and h5py users find them (read in a process that never imports galaxy_hpc)."""

from __future__ import annotations

import pytest
from plain_readers import run_plain

from galaxy_hpc.cli.main import main
from galaxy_hpc.data.synth import TRUTH_COLUMNS, VOTE_COLUMNS


@pytest.mark.parametrize("backend, name", [("zarr", "s.zarr"), ("hdf5", "s.h5")])
def test_plain_readers_see_units_and_descriptions(tmp_path, capsys, backend, name):
    out = tmp_path / name
    assert main(["synth", "--n", "4", "--size", "32", "--out", str(out), "--format", backend,
                 "--shard-size", "2", "--float", "--json"]) == 0
    seen = run_plain(backend, out)
    assert seen["redshift"] == {"unit": "", "description": "redshift of the galaxy"}
    assert seen["log_stellar_mass"]["unit"] == "log(solMass)"
    assert seen["half_light_radius_arcsec"]["unit"] == "arcsec"
    assert seen["position_angle_deg"]["unit"] == "deg"
    assert seen["flux_r"]["unit"] == "nanomaggy" and "r-band" in seen["flux_r"]["description"]
    assert seen["t02_edgeon_a04_yes_fraction"] == {
        "unit": "", "description": "Q2 edgeon vote share for 'yes'"}
    assert seen["id"] == {"description": "synth-<seed>-<index>, made from those alone"}
    assert "unit" not in seen["caption"] and seen["caption"]["description"]
    dimensionless = {"redshift", "bulge_fraction", "bulge_sersic_n", "disk_axis_ratio",
                     *VOTE_COLUMNS}
    for column in (*TRUTH_COLUMNS, *VOTE_COLUMNS):
        assert seen[column]["description"], column
        assert (seen[column]["unit"] == "") == (column in dimensionless), column
