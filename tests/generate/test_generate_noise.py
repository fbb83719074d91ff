"""`generate`'s noise section: survey pixel noise added to every image after it is drawn
(a mock catalogue). The same catalog is made with and without it, so the difference of
the two is the noise itself: its spread per image and band is the sigma the catalog's
column says was added, what an image lacked against the target; the target taken from a
store is that store's noise, read here with plain numpy. An object regenerated alone
carries the same noise; a catalog made without noise does not resume with it; bad
settings are refused naming the field or the store."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from gen_helpers import ENV, write_config
from plain_readers import run_plain

from hpc.store import StoreSpec, create_store, finalize_store, open_store

NUM = 8


def config(models, synth_store, tmp_path, name, **extra):
    return write_config(tmp_path / f"{name}.yaml", {
        "out": str(tmp_path / f"{name}.zarr"), "num_objects": NUM, "shard_size": 4,
        "batch_size": 4, "runtime": {"cpu_threads": 1},
        "model": {"kind": "ldm", "path": str(models["ldm_gz2"])},
        "sampler": {"name": "dpm_solver++", "steps": 2, "guidance_scale": 1.0},
        "conditions": {"source": "store", "path": str(synth_store)}, **extra})


def run(galaxy_hpc, path, *extra, ok=True):
    done = subprocess.run([galaxy_hpc, "generate", str(path), *extra], capture_output=True,
                          text=True, timeout=300, env=ENV)
    if ok:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def ring(images: np.ndarray) -> np.ndarray:
    """(N, C, pixels) the 3-pixel border ring."""
    n, c = images.shape[:2]
    return np.concatenate([images[..., :3, :].reshape(n, c, -1),
                           images[..., -3:, :].reshape(n, c, -1)], axis=-1)


def noisy_survey(path, sigma: float) -> np.ndarray:
    """A uint8 'survey' of flat 100-count skies with Gaussian noise of `sigma` (no clipping
    reaches it); returns its images."""
    rng = np.random.default_rng(5)
    images = np.clip(np.rint(100 + sigma * rng.standard_normal((40, 3, 32, 32))), 0, 255
                     ).astype(np.uint8)
    writer = create_store(path, StoreSpec(image_shape=(3, 32, 32), image_dtype="uint8",
                                          columns={}, shard_size=20), num_items=40)
    for shard in range(writer.num_shards):
        a, b = writer.shard_bounds(shard)
        writer.write_shard(shard, images[a:b], {})
    finalize_store(path)
    return images


@pytest.fixture(scope="module")
def clean(galaxy_hpc, models, synth_store, tmp_path_factory):
    root = tmp_path_factory.mktemp("noise-clean")
    run(galaxy_hpc, config(models, synth_store, root, "clean"))
    return open_store(root / "clean.zarr").read_images().astype(np.float64)


def test_a_catalog_given_a_sigma_carries_what_each_image_lacked(galaxy_hpc, models,
                                                                synth_store, clean, tmp_path):
    # The tiny untrained model draws rough images (pixel noise ~20-27 counts): twice that
    # gives every image some, and little of it clips at the uint8 range.
    target = [50.0, 50.0, 50.0]
    path = config(models, synth_store, tmp_path, "sigma", noise={"sigma": target})
    run(galaxy_hpc, path)
    store = open_store(tmp_path / "sigma.zarr")
    noisy = store.read_images().astype(np.float64)
    added = np.stack([store.read_column(f"noise_added_{b}") for b in range(3)], axis=1)
    assert added.shape == (NUM, 3) and (added > 0.8 * np.array(target)).all()
    assert (added <= np.array(target)).all()
    difference = noisy - clean
    inside = (noisy > 0) & (noisy < 255)  # the uint8 range clips some pixels
    for k in range(NUM):
        for b in range(3):
            values = difference[k, b][inside[k, b]]
            assert abs(values.mean()) < 0.1 * added[k, b]
            assert values.std() == pytest.approx(added[k, b], rel=0.12), (k, b)
    assert store.attrs["generate"]["noise"] == {"sigma": target}
    assert store.attrs["generate"]["fingerprint"]["noise"] == {"sigma": target}
    # The FITS table carries the columns, described, for astropy users.
    seen = run_plain("fits", tmp_path / "sigma.fits")
    for b in range(3):
        cards = seen["plain_columns"][f"noise_added_{b}"]
        assert f"added to band {b}" in cards["TCOMM"]
    # One object made alone is the catalog's, noise and all.
    one = tmp_path / "one.npy"
    run(galaxy_hpc, path, "--object", "5", "--out", str(one))
    np.testing.assert_array_equal(np.load(one), store.read_images(5, 6)[0])


def test_the_target_taken_from_a_store_is_that_stores_noise(galaxy_hpc, models, synth_store,
                                                             clean, tmp_path):
    survey = noisy_survey(tmp_path / "survey.zarr", sigma=30.0)
    steps = np.concatenate([np.diff(ring(survey.astype(np.float64)), axis=-1)], axis=-1)
    plain = np.median(1.4826 * np.median(np.abs(steps), axis=-1) / np.sqrt(2), axis=0)
    path = config(models, synth_store, tmp_path, "match",
                  noise={"match": str(tmp_path / "survey.zarr")})
    run(galaxy_hpc, path)
    store = open_store(tmp_path / "match.zarr")
    recorded = store.attrs["generate"]["noise"]
    assert recorded["match"] == str(tmp_path / "survey.zarr")
    assert recorded["checksum"] == open_store(tmp_path / "survey.zarr").checksum
    sigma = store.attrs["generate"]["fingerprint"]["noise"]["sigma"]
    assert sigma == pytest.approx(plain, rel=0.05) and sigma == pytest.approx([30.0] * 3,
                                                                                 rel=0.1)
    # The drawn images carry ~24 counts of their own: each got the quadrature rest.
    added = np.stack([store.read_column(f"noise_added_{b}") for b in range(3)], axis=1)
    assert (added > 0).all() and (added < 25.0).all()
    noisy = store.read_images().astype(np.float64)
    assert ring(noisy - clean).std(axis=-1).mean() == pytest.approx(added.mean(), rel=0.15)


def test_a_catalog_made_without_noise_does_not_resume_with_it(galaxy_hpc, models,
                                                              synth_store, tmp_path):
    run(galaxy_hpc, config(models, synth_store, tmp_path, "plain"))
    again = config(models, synth_store, tmp_path, "plain", noise={"sigma": [5.0, 5.0, 5.0]})
    done = run(galaxy_hpc, again, ok=False)
    assert done.returncode != 0 and "noise" in done.stderr


@pytest.mark.parametrize("noise, message", [
    ({"sigma": [5.0, 5.0]}, "noise.sigma gives 2 value(s) for images of 3 band(s)"),
    ({"sigma": [5.0, -1.0, 5.0]}, "noise.sigma must be finite and >= 0"),
    ({"sigma": [5.0] * 3, "match": "x.zarr"}, "not both"),
    ({"match": "FLOAT"}, "holds float32 images, the catalog uint8"),
])
def test_bad_noise_settings_are_refused_by_name(galaxy_hpc, models, synth_store, tmp_path,
                                                noise, message):
    if noise.get("match") == "FLOAT":
        float_store = tmp_path / "flux.zarr"
        writer = create_store(float_store, StoreSpec(image_shape=(3, 32, 32),
                                                     image_dtype="float32", columns={},
                                                     shard_size=4), num_items=4)
        writer.write_shard(0, np.zeros((4, 3, 32, 32), np.float32), {})
        finalize_store(float_store)
        noise = {"match": str(float_store)}
    done = run(galaxy_hpc, config(models, synth_store, tmp_path, "bad", noise=noise), ok=False)
    assert done.returncode != 0 and message in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "bad.fits").exists()
