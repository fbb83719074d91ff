"""Conditioning consistency: the rank correlations galaxy_hpc.data.photometry gives, computed
over ranks' shares; a catalog whose requests follow its images shows the trend, one whose
requests were shuffled does not."""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_hpc.data.photometry import consistency, measure
from galaxy_hpc.evaluate.conditioning import run_conditioning
from galaxy_hpc.evaluate.config import ConditioningConfig
from hpc.store import StoreSpec, create_store, finalize_store, open_store


def shuffled_copy(source, out, seed=0):
    """The same images with log_stellar_mass and redshift permuted: requests unrelated to
    the galaxies drawn."""
    order = np.random.default_rng(seed).permutation(len(source))
    spec = StoreSpec(image_shape=source.spec.image_shape, image_dtype=source.spec.image_dtype,
                     columns={"log_stellar_mass": "float64", "redshift": "float64"},
                     shard_size=32)
    writer = create_store(out, spec, num_items=len(source))
    columns = {name: source.read_column(name)[order] for name in spec.columns}
    for shard in range(writer.num_shards):
        a, b = writer.shard_bounds(shard)
        writer.write_shard(shard, source.read_images(a, b),
                           {name: values[a:b] for name, values in columns.items()})
    finalize_store(out)
    return out


def test_correlations_are_photometry_consistency_of_the_whole_store(float_stores):
    cfg = ConditioningConfig(generated=str(float_stores["real"]), batch_size=16)
    result = run_conditioning(cfg, show_progress=False).to_dict()
    store = open_store(float_stores["real"])
    photometry = measure(store.read_images())
    by = store.read_column("redshift")
    expected = {
        ("log_stellar_mass", "total_flux"): consistency(store.read_column("log_stellar_mass"),
                                                        photometry.total_flux, by=by),
        ("redshift", "total_flux"): consistency(by, photometry.total_flux)}
    found = {(c["requested"], c["measured"]): c for c in result["correlations"]}
    for pair, want in expected.items():
        assert found[pair]["rho"] == pytest.approx(want.rho, abs=1e-12)
        np.testing.assert_allclose(found[pair]["bin_rho"], want.bin_rho, atol=1e-12)
    assert found[("redshift", "total_flux")]["by"] is None  # not binned by itself
    # A flux-limited sample: farther is fainter; at fixed redshift more massive is brighter
    # (over the whole sample the two cancel: massive galaxies are seen farther away).
    assert found[("redshift", "total_flux")]["rho"] < -0.3
    assert min(found[("log_stellar_mass", "total_flux")]["bin_rho"]) > 0.4


def test_shuffled_requests_show_no_trend(float_stores, tmp_path):
    source = open_store(float_stores["real"])
    out = shuffled_copy(source, tmp_path / "shuffled.zarr")
    result = run_conditioning(ConditioningConfig(generated=str(out), real=str(
        float_stores["real"]), pairs=["log_stellar_mass:total_flux"]),
        show_progress=False).to_dict()
    assert max(abs(r) for r in result["correlations"][0]["bin_rho"]) < 0.4
    assert min(result["real_correlations"][0]["bin_rho"]) > 0.4


def test_an_unknown_requested_column_is_named(float_stores):
    with pytest.raises(ValueError, match="no numeric column 'stellar_mass'.*log_stellar_mass"):
        run_conditioning(ConditioningConfig(generated=str(float_stores["real"]),
                                            pairs=["stellar_mass:total_flux"]),
                         show_progress=False)


def test_the_shipped_config_with_overrides_gives_what_positionals_and_flags_give(
        float_stores, tmp_path, capsys):
    """`evaluate conditioning CONFIG generated=... a.b=v` and `evaluate conditioning GEN
    --flag v` are one command line in two spellings."""
    import json
    from pathlib import Path

    from galaxy_hpc.cli.main import main

    config = Path(__file__).resolve().parents[2] / "configs" / "evaluate" / "conditioning.yaml"
    generated = str(float_stores["generated"])
    assert main(["evaluate", "conditioning", str(config), f"generated={generated}",
                 "num_bins=2", "batch_size=16", "--json", "--out", str(tmp_path)]) == 0
    from_config = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "conditioning", generated, "--bins", "2", "--batch-size", "16",
                 "--json"]) == 0
    from_flags = json.loads(capsys.readouterr().out)
    assert from_config["correlations"] == from_flags["correlations"]
    assert len(from_config["correlations"][0]["bin_rho"]) == 2
    assert json.loads((tmp_path / "conditioning.json").read_text()) == from_config
