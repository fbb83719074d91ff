"""`generate`'s noise section: survey pixel noise added to every image after it is drawn
(a mock catalogue), on a float (flux) catalog of the tiny GAN. The same catalog is made
with and without it, so the difference of the two is the noise itself: its spread per
image and band is the sigma the catalog's column says was added, what an image lacked
against the target; the target taken from a store is that store's noise, read here with
plain numpy, and the sigma the store was drawn with. An object regenerated alone carries
the same noise; a catalog made without noise does not resume with it; bad settings (a
uint8 catalog among them) are refused naming the field or the store, and a damaged match
store stops the run naming its damaged file before any object is made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gen_helpers import ENV, write_config
from plain_readers import run_plain

from hpc.store import StoreSpec, create_store, finalize_store, open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
from damage_kit import damage  # noqa: E402

NUM = 8
BANDS = 4  # the tiny GAN draws 4-band float32 flux images


def config(models, synth_store, tmp_path, name, model="gan", **extra):
    kinds = {"gan": {"kind": "gan", "path": str(models["gan"]), "options": {"batch_size": 4}},
             "ldm_gz2": {"kind": "ldm", "path": str(models["ldm_gz2"])}}
    return write_config(tmp_path / f"{name}.yaml", {
        "out": str(tmp_path / f"{name}.zarr"), "num_objects": NUM, "shard_size": 4,
        "batch_size": 4, "runtime": {"cpu_threads": 1}, "model": kinds[model],
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


def plain_noise(images: np.ndarray) -> np.ndarray:
    """(C,) median over images of 1.4826 x MAD of horizontal neighbour differences in the
    border ring / sqrt 2: a robust sky sigma, in plain numpy."""
    steps = np.diff(np.concatenate([images[..., :3, :], images[..., -3:, :]], axis=-2),
                    axis=-1).reshape(len(images), images.shape[1], -1)
    return np.median(1.4826 * np.median(np.abs(steps), axis=-1) / np.sqrt(2), axis=0)


def noisy_survey(path, sigma: np.ndarray) -> np.ndarray:
    """A float32 'survey' of flat skies with Gaussian noise of `sigma` per band; returns
    its images."""
    rng = np.random.default_rng(5)
    images = (1.0 + sigma[None, :, None, None] * rng.standard_normal((40, BANDS, 32, 32))
              ).astype(np.float32)
    writer = create_store(path, StoreSpec(image_shape=(BANDS, 32, 32), image_dtype="float32",
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
    own = plain_noise(clean)  # the drawn images' own pixel noise per band
    target = [float(v) for v in 3 * own]  # every image lacks some
    path = config(models, synth_store, tmp_path, "sigma", noise={"sigma": target})
    run(galaxy_hpc, path)
    store = open_store(tmp_path / "sigma.zarr")
    noisy = store.read_images().astype(np.float64)
    added = np.stack([store.read_column(f"noise_added_{b}") for b in range(BANDS)], axis=1)
    assert added.shape == (NUM, BANDS) and (added > 0.5 * np.array(target)).all()
    assert (added <= np.array(target)).all()
    difference = noisy - clean  # the noise itself (float images: nothing clips)
    assert (np.abs(difference.mean(axis=(2, 3))) < 0.15 * added).all()
    np.testing.assert_allclose(difference.std(axis=(2, 3)), added, rtol=0.08)
    assert store.attrs["generate"]["noise"] == {"sigma": target}
    assert store.attrs["generate"]["fingerprint"]["noise"] == {"sigma": target}
    # The FITS table carries the columns, described, for astropy users.
    seen = run_plain("fits", tmp_path / "sigma.fits")
    for b in range(BANDS):
        cards = seen["plain_columns"][f"noise_added_{b}"]
        assert f"added to band {b}" in cards["TCOMM"]
    # One object made alone is the catalog's, noise and all.
    one = tmp_path / "one.npy"
    run(galaxy_hpc, path, "--object", "5", "--out", str(one))
    np.testing.assert_array_equal(np.load(one), store.read_images(5, 6)[0])


def test_the_target_taken_from_a_store_is_that_stores_noise(galaxy_hpc, models, synth_store,
                                                             clean, tmp_path):
    sigma = 4 * plain_noise(clean)
    survey = noisy_survey(tmp_path / "survey.zarr", sigma)
    path = config(models, synth_store, tmp_path, "match",
                  noise={"match": str(tmp_path / "survey.zarr")})
    run(galaxy_hpc, path)
    store = open_store(tmp_path / "match.zarr")
    recorded = store.attrs["generate"]["noise"]
    assert recorded["match"] == str(tmp_path / "survey.zarr")
    assert recorded["checksum"] == open_store(tmp_path / "survey.zarr").checksum
    target = store.attrs["generate"]["fingerprint"]["noise"]["sigma"]
    assert target == pytest.approx(plain_noise(survey), rel=0.05)
    assert target == pytest.approx(sigma, rel=0.06)  # the sigma the survey was drawn with
    added = np.stack([store.read_column(f"noise_added_{b}") for b in range(BANDS)], axis=1)
    difference = store.read_images().astype(np.float64) - clean
    np.testing.assert_allclose(difference.std(axis=(2, 3)), added, rtol=0.08)


def test_a_catalog_made_without_noise_does_not_resume_with_it(galaxy_hpc, models,
                                                              synth_store, tmp_path):
    run(galaxy_hpc, config(models, synth_store, tmp_path, "plain"))
    again = config(models, synth_store, tmp_path, "plain", noise={"sigma": [5.0] * BANDS})
    done = run(galaxy_hpc, again, ok=False)
    assert done.returncode != 0 and "noise" in done.stderr


@pytest.mark.parametrize("model, noise, message", [
    ("gan", {"sigma": [5.0, 5.0]}, "noise.sigma gives 2 value(s) for images of 4 band(s)"),
    ("gan", {"sigma": [5.0, -1.0, 5.0, 5.0]}, "noise.sigma must be finite and >= 0"),
    ("gan", {"sigma": [5.0] * 4, "match": "x.zarr"}, "not both"),
    ("gan", {"match": "THREE"}, "its images have 3 band(s), the catalog's 4"),
    ("ldm_gz2", {"sigma": [5.0] * 3}, "draws uint8 images (a stretched composite)"),
])
def test_bad_noise_settings_are_refused_by_name(galaxy_hpc, models, synth_store, tmp_path,
                                                model, noise, message):
    if noise.get("match") == "THREE":
        noise = {"match": str(synth_store)}  # uint8 RGB, 3 bands
    done = run(galaxy_hpc, config(models, synth_store, tmp_path, "bad", model, noise=noise),
               ok=False)
    assert done.returncode != 0 and message in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "bad.fits").exists()


def test_a_damaged_match_store_is_named_and_nothing_is_made(galaxy_hpc, models, synth_store,
                                                             tmp_path):
    survey = tmp_path / "survey.zarr"
    noisy_survey(survey, np.full(BANDS, 0.5))
    hurt = damage(survey, "truncate")  # shard 1 (items 20..39): read by the noise estimate
    done = run(galaxy_hpc, config(models, synth_store, tmp_path, "hurt",
                                  noise={"match": str(survey)}), ok=False)
    assert done.returncode != 0
    assert f"{survey} is damaged" in done.stderr and hurt in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert not (tmp_path / "hurt.fits").exists() and not (tmp_path / "hurt.zarr").exists()
