"""Conditional fidelity (`evaluate conditioning` with a real store): hand-made stores whose
cells are known by construction (eval_stores.blob_store: 3 x 3 cells of redshift x log M*)
read "within noise" when drawn like the real one, "off" in exactly the cell whose flux was
scaled, "too sparse" where a cell holds too few galaxies; the same numbers on 2 ranks."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from eval_stores import blob_store
from galaxy_hpc.data.photometry import measure, profile
from galaxy_hpc.evaluate.conditioning import run_conditioning
from galaxy_hpc.evaluate.config import ConditioningConfig
from galaxy_hpc.data.fidelity import cell_fidelity, compare_cell, split_half_distances
from galaxy_hpc.evaluate.results import to_json
from scipy.stats import wasserstein_distance

SPARSE = (2, 2)  # the cell the "same" catalog holds only 10 galaxies of
BRIGHT = (1, 1)  # the cell whose flux the "brighter" catalog doubles


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fidelity")
    return {"real": blob_store(root / "real.zarr", 1),
            "same": blob_store(root / "same.zarr", 2, per_cell={SPARSE: 10}),
            "brighter": blob_store(root / "brighter.zarr", 3, flux_factor={BRIGHT: 2.0}),
            "real_1band": blob_store(root / "real1.zarr", 4, bands=1, per_cell=40),
            "gen_1band": blob_store(root / "gen1.zarr", 5, bands=1, per_cell=40),
            "draws": blob_store(root / "draws.zarr", 6, per_cell=40, draws=4)}


def evaluate(blobs, generated, real="real", **settings):
    cfg = ConditioningConfig(generated=str(blobs[generated]), real=str(blobs[real]),
                             batch_size=64, **settings)
    return run_conditioning(cfg, show_progress=False)


@pytest.fixture(scope="module")
def same(blobs):
    return evaluate(blobs, "same")


@pytest.fixture(scope="module")
def brighter(blobs):
    return evaluate(blobs, "brighter")


def cells(result):
    return {tuple(cell["bins"]): cell for cell in result.to_dict()["fidelity"]["cells"]}


def test_cells_are_the_real_stores_terciles_and_hold_the_galaxies_drawn_there(same):
    found = cells(same)
    assert sorted(found) == [(i, j) for i in range(3) for j in range(3)]
    for key, cell in found.items():
        assert cell["num_real"] == 60
        assert cell["num_generated"] == (10 if key == SPARSE else 60)
    # A cell's redshift range holds its centre (0.06, 0.12, 0.18 +- 0.01) and no other.
    low, high = found[(1, 0)]["ranges"]["redshift"]
    assert 0.07 < low < 0.11 and 0.13 < high < 0.17


def test_a_catalog_drawn_like_the_data_is_within_noise_in_every_judged_cell(same):
    for key, cell in cells(same).items():
        for name, q in cell["quantities"].items():
            if key == SPARSE:
                assert (q["status"], q["verdict"]) == ("sparse", "too sparse"), name
                assert "w1" not in q and q["num_generated"] == 10
            else:
                assert (q["status"], q["verdict"]) == ("within", "within noise"), (key, name)
                assert q["w1_over_floor"] < 3
    assert "log_flux: 8 of 9 cells within noise, 0 off, 1 too sparse" in same.summary()


def test_flux_doubled_in_one_cell_reads_off_there_and_nowhere_else(brighter):
    for key, cell in cells(brighter).items():
        flux = cell["quantities"]["log_flux"]
        if key == BRIGHT:
            assert flux["status"] == "off" and flux["sigma"] > 3
            assert flux["verdict"] == f"off by {flux['sigma']:.1f} sigma"
            shift = flux["median_generated"] - flux["median_real"]
            assert shift == pytest.approx(np.log10(2.0), abs=0.06)
            assert flux["w1"] == pytest.approx(np.log10(2.0), abs=0.06)
        else:
            assert flux["status"] == "within", key
        # Size, colour and concentration do not depend on the flux.
        for name in ("half_light_radius", "colour", "concentration"):
            assert cell["quantities"][name]["status"] == "within", (key, name)
    assert "(worst" in brighter.summary() and "log_flux: 8 of 9 cells within noise, 1 off" \
        in brighter.summary()


def test_one_band_stores_have_no_colour_and_say_so(blobs):
    result = evaluate(blobs, "gen_1band", "real_1band", quantities=["colour", "concentration"])
    for cell in cells(result).values():
        assert cell["quantities"]["colour"] == {"status": "unmeasured",
                                                "verdict": "not measured"}
        assert cell["quantities"]["concentration"]["status"] == "within"
    assert "colour: not measured" in result.summary()


def test_generated_trends_are_read_in_the_real_stores_bins(same):
    """The "same" catalog lacks most of one redshift bin's galaxies: its own terciles would
    differ from the real ones; its trends are binned by the real store's."""
    data = same.to_dict()
    for mine, real in zip(data["correlations"], data["real_correlations"]):
        assert mine["bin_edges"] == real["bin_edges"]
    mass_flux = data["correlations"][0]
    assert mass_flux["bin_counts"] == [180, 180, 130]


def test_rgb_composites_get_a_colour_of_the_picture(stores):
    """uint8 RGB stores: colour is R - G of the composite (measured, not a physical colour);
    concentration is unit-free and reads as for flux."""
    result = run_conditioning(ConditioningConfig(
        generated=str(stores["generated"]), real=str(stores["real"]), grid_bins=2,
        min_per_cell=5), show_progress=False)
    judged = [cell for cell in cells(result).values()
              if cell["quantities"]["colour"]["status"] != "sparse"]
    assert judged  # a flux-limited sample leaves some cells of mass x redshift near empty
    for cell in judged:
        colour, concentration = (cell["quantities"][q] for q in ("colour", "concentration"))
        assert colour["status"] in ("within", "off") and np.isfinite(colour["median_real"])
        assert 1.8 < concentration["median_real"] < 5


def test_trends_come_with_bootstrap_intervals_beside_the_real_ones(brighter):
    data = brighter.to_dict()
    for side in ("correlations", "real_correlations"):
        mass_flux = next(c for c in data[side] if c["measured"] == "total_flux"
                         and c["requested"] == "log_stellar_mass")
        assert len(mass_flux["bin_rho_interval"]) == 3
        for rho, (lo, hi) in zip(mass_flux["bin_rho"], mass_flux["bin_rho_interval"]):
            assert lo <= rho <= hi and 0 < hi - lo < 0.2  # 0.1 dex scatter: a tight trend
        lo, hi = mass_flux["rho_interval"]
        assert lo <= mass_flux["rho"] <= hi


def test_the_floor_is_the_split_half_distance_scaled_to_the_sizes_compared():
    """Mean W1 of two independent draws of sizes (40, 400), and the split-half floor of one
    400-draw scaled to those sizes by sqrt(1/n + 1/m): the same within sampling noise."""
    rng = np.random.default_rng(0)
    direct = np.mean([wasserstein_distance(rng.normal(size=40), rng.normal(size=400))
                      for _ in range(300)])
    floors = [split_half_distances(rng.normal(size=400), 40, num_splits=20, rng=rng).mean()
              for _ in range(30)]
    assert np.mean(floors) == pytest.approx(direct, rel=0.1)
    unscaled = np.mean([wasserstein_distance(rng.normal(size=200), rng.normal(size=200))
                        for _ in range(300)])
    assert unscaled < 0.7 * direct  # unscaled, the halves' distance would be far too small


def test_a_shift_of_k_floors_reads_off_and_the_verdict_is_its_sigma():
    rng = np.random.default_rng(1)
    real = rng.normal(size=200)
    settings = dict(min_per_cell=30, num_splits=50, tolerance_sigmas=3.0)
    near = compare_cell(real[::-1].copy(), real, rng=rng, **settings)
    assert near["w1"] == 0 and near["status"] == "within"
    far = compare_cell(rng.normal(size=200) + 1.0, real, rng=rng, **settings)
    assert far["status"] == "off" and far["w1"] == pytest.approx(1.0, abs=0.2)
    assert far["w1_over_floor"] > 5 and far["verdict"].startswith("off by")
    few = compare_cell(rng.normal(size=29), real, rng=rng, **settings)
    assert few["status"] == "sparse" and few["median_generated"] is not None


def test_concentration_and_colour_of_a_gaussian_with_known_bands():
    side, sigma = 64, 5.0  # r20 of 3.3 px (at 2 px, pixelisation adds ~0.1 to C)
    yy, xx = np.mgrid[0:side, 0:side] - (side - 1) / 2
    blob = np.exp(-(yy**2 + xx**2) / (2 * sigma**2))
    images = np.stack([blob, 1.5 * blob, 0 * blob])[None]
    shape = profile(images, measure(images))
    # r_f = sigma sqrt(-2 ln(1 - f)): C = 5 log10(r80 / r20) = 2.145 for any Gaussian.
    assert shape.concentration[0] == pytest.approx(2.145, abs=0.05)
    assert shape.colour[0] == pytest.approx(-2.5 * np.log10(1 / 1.5), abs=1e-6)
    one_band = images[:, :1]
    assert np.isnan(profile(one_band, measure(one_band)).colour[0])


def test_a_catalog_of_k_draws_per_row_is_judged_draw_by_draw(blobs):
    """A catalog that drew each of 360 rows 4 times (source_row, as generate's per_row
    writes it): per cell W1 is the mean over the 4 draws of each draw's W1 against the real
    cell, recomputed here from the images; `draws: pooled` judges the 1,440 as one sample."""
    from hpc.store import open_store

    def log_flux_of(name):
        store = open_store(blobs[name])
        images = store.read_images(0, len(store)).astype(np.float64)
        columns = {c: store.read_column(c) for c in store.spec.columns}
        return np.log10(measure(images).total_flux), columns

    gen, gen_columns = log_flux_of("draws")
    real, real_columns = log_flux_of("real")
    rows = gen_columns["source_row"]
    by_draw = np.stack([gen[rows == r] for r in range(360)], axis=1)  # (4, 360)
    row_mass = gen_columns["log_stellar_mass"][::4]
    row_z = gen_columns["redshift"][::4]

    def in_cell(z, mass, cell, reference):
        edges = [np.quantile(reference[c], [1 / 3, 2 / 3]) for c in ("redshift",
                                                                      "log_stellar_mass")]
        return (np.searchsorted(edges[0], z) == cell[0]) & \
            (np.searchsorted(edges[1], mass) == cell[1])

    # As drawn: the W1 above is recomputed from the stored images (noise matching has its
    # own tests, tests/evaluate/test_eval_noise_match.py).
    auto = evaluate(blobs, "draws", quantities=["log_flux"], match_noise=False)
    pooled = evaluate(blobs, "draws", quantities=["log_flux"], draws="pooled",
                      match_noise=False)
    for result, k in ((auto, 4), (pooled, 1)):
        fidelity = result.to_dict()["fidelity"]
        assert fidelity["draws_per_row"] == k
        for cell in fidelity["cells"]:
            q = cell["quantities"]["log_flux"]
            assert (q["num_draws"], q["num_generated"], q["status"]) == (k, 160, "within")
            mine = in_cell(row_z, row_mass, cell["bins"], real_columns)
            theirs = real[in_cell(real_columns["redshift"], real_columns["log_stellar_mass"],
                                  cell["bins"], real_columns)]
            expected = (np.mean([wasserstein_distance(d[mine], theirs) for d in by_draw])
                        if k == 4 else wasserstein_distance(by_draw[:, mine].ravel(), theirs))
            assert q["w1"] == pytest.approx(expected, rel=1e-9)
    assert "generated: 4 draws of each of 360 condition rows" in auto.summary()
    assert "generated: every galaxy one sample" in pooled.summary()
    # Pooled, the floor is scaled to 160 galaxies, not 40: a quarter of the variance.
    floors = [[c["quantities"]["log_flux"]["floor"] for c in r.to_dict()["fidelity"]["cells"]]
              for r in (auto, pooled)]
    assert all(a > 1.2 * p for a, p in zip(*floors))


def test_rows_drawn_unequal_times_are_one_sample(tmp_path):
    from galaxy_hpc.evaluate.conditioning import draws_of_rows
    from hpc.store import StoreSpec, create_store, finalize_store, open_store

    def catalog(name, rows):
        spec = StoreSpec(image_shape=(1, 4, 4), image_dtype="float32",
                         columns={"source_row": "int64"}, shard_size=8)
        writer = create_store(tmp_path / name, spec, num_items=len(rows))
        writer.write_shard(0, np.zeros((len(rows), 1, 4, 4), np.float32),
                           {"source_row": np.asarray(rows, np.int64)})
        finalize_store(tmp_path / name)
        return open_store(tmp_path / name)

    index, said = draws_of_rows(catalog("even.zarr", [2, 0, 2, 1, 0, 1]))
    assert index.tolist() == [[1, 3, 0], [4, 5, 2]] and said == \
        "2 draws of each of 3 condition rows"
    assert draws_of_rows(catalog("uneven.zarr", [0, 0, 1, 1, 1, 2])) is None
    assert draws_of_rows(catalog("once.zarr", [0, 1, 2])) is None
    with pytest.raises(ValueError, match="draws must be one of auto, pooled, got 'mean'"):
        ConditioningConfig(draws="mean")


def test_a_grid_column_missing_from_a_store_is_named(blobs):
    with pytest.raises(ValueError, match="no numeric column 'sersic_n' for the fidelity grid"):
        evaluate(blobs, "same", grid=["redshift", "sersic_n"])


def test_a_grid_column_without_a_finite_value_is_named():
    values = {"log_flux": np.ones(40)}
    with pytest.raises(ValueError, match="grid column 'redshift' of the real store: no finite"):
        cell_fidelity(values, values, {"redshift": np.ones(40)},
                      {"redshift": np.full(40, np.nan)}, num_bins=3, min_per_cell=5,
                      num_splits=5, tolerance_sigmas=3.0, seed=0)


def test_the_report_colours_each_cell_by_its_verdict(blobs, brighter, tmp_path):
    from galaxy_hpc.evaluate.report import build_report
    from galaxy_hpc.evaluate.results import write_result

    write_result(tmp_path, "conditioning", brighter.to_dict())
    report = build_report(tmp_path)
    page = (tmp_path / "report" / "index.html").read_text()
    assert "fidelity.png" in report.images and (tmp_path / "report" / "fidelity.png").is_file()
    assert page.count('<tr class="off">') == 1  # log flux of the bright cell, nothing else
    assert page.count('<tr class="within">') == 4 * 9 - 1
    assert "Conditional fidelity per cell" in page and "off by" in page


@pytest.mark.mpi
def test_two_ranks_give_the_numbers_of_one(blobs, brighter, mpiexec, galaxy_hpc,
                                           subprocess_env, tmp_path):
    done = subprocess.run(
        [mpiexec, "-n", "2", galaxy_hpc, "evaluate", "conditioning", str(blobs["brighter"]),
         "--real", str(blobs["real"]), "--batch-size", "64", "--json"],
        env=subprocess_env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads(done.stdout.strip().splitlines()[-1])
    one = json.loads(to_json(brighter.to_dict()))  # as the JSON holds it
    assert (one["num_ranks"], two["num_ranks"]) == (1, 2)
    for key in ("correlations", "real_correlations", "fidelity"):
        assert two[key] == one[key], key
