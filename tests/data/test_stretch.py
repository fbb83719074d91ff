"""Stretches map store values to [-1, 1] and back exactly (numpy and torch)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from galaxy_hpc.data.stretch import (
    AsinhStretch,
    Uint8Stretch,
    estimate_asinh_stretch,
    stretch_for_store,
    stretch_from_dict,
)
from galaxy_hpc.data.synth import SynthConfig, draw_galaxies
from hpc.store import StoreSpec, create_store, finalize_store, open_store


@pytest.fixture(scope="module")
def flux():
    """Synthetic SDSS-like galaxies in nanomaggies (g, r, i), 24 of 32x32."""
    images, _ = draw_galaxies(SynthConfig(size=32), seed=3, start=0, count=24)
    return images


def test_uint8_round_trip_is_exact():
    x = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    y = Uint8Stretch().forward(x)
    assert y.min() == -1.0 and y.max() == 1.0
    assert np.array_equal(np.round(Uint8Stretch().inverse(y)).astype(np.uint8), x)
    t = Uint8Stretch().forward(torch.from_numpy(x))
    assert t.dtype == torch.float32
    assert torch.equal(Uint8Stretch().inverse(t).round().to(torch.uint8), torch.from_numpy(x))


def test_asinh_inverts_numpy_and_torch(flux):
    stretch = estimate_asinh_stretch(flux)
    y = stretch.forward(flux.astype(np.float64))
    np.testing.assert_allclose(stretch.inverse(y), flux, rtol=1e-9, atol=1e-12)
    t = stretch.forward(torch.from_numpy(flux))
    assert t.dtype == torch.float32
    back = stretch.inverse(t).numpy()
    scale = np.abs(flux).max()
    np.testing.assert_allclose(back, flux, rtol=1e-4, atol=1e-5 * scale)
    # beyond [lower, upper]: outside [-1, 1], and still invertible (nothing is clipped)
    bright = np.full((1, 3, 2, 2), 10 * max(stretch.upper))
    assert (stretch.forward(bright) > 1).all()
    np.testing.assert_allclose(stretch.inverse(stretch.forward(bright)), bright, rtol=1e-9)


def test_estimated_stretch_uses_the_range(flux):
    stretch = estimate_asinh_stretch(flux)
    y = stretch.forward(flux)
    for band in range(3):
        values = y[:, band]
        assert np.quantile(values, 0.001) == pytest.approx(-1.0, abs=1e-3)
        assert np.quantile(values, 0.9999) == pytest.approx(1.0, abs=1e-3)
        sky = np.median(values)  # most pixels are sky: below the middle of the range
        assert -1.0 < sky < 0.0
    # softening is the sky noise: robust sigma of the (sky-dominated) pixels
    r_band = flux[:, 1]
    mad = 1.4826 * np.median(np.abs(r_band - np.median(r_band)))
    assert stretch.softening[1] == pytest.approx(mad)


def test_dict_round_trip_and_global_stretch(flux):
    stretch = estimate_asinh_stretch(flux)
    again = stretch_from_dict(json.loads(json.dumps(stretch.to_dict())))
    assert again == stretch
    assert stretch_from_dict({"kind": "uint8"}) == Uint8Stretch()
    single = AsinhStretch(softening=0.01, lower=-0.05, upper=10.0)  # one value: every band
    y = single.forward(flux)
    np.testing.assert_allclose(single.inverse(y), flux, rtol=1e-4, atol=1e-6)
    assert y[:, 0].max() == single.forward(flux[:, :1]).max()


def test_invalid_stretches_say_what_to_change():
    with pytest.raises(ValueError, match="softening must be > 0"):
        AsinhStretch(softening=0.0, lower=0.0, upper=1.0)
    with pytest.raises(ValueError, match="lower"):
        AsinhStretch(softening=1.0, lower=1.0, upper=1.0)
    with pytest.raises(ValueError, match="one value per band"):
        AsinhStretch(softening=(1.0, 1.0), lower=(0.0,), upper=(1.0, 2.0))
    with pytest.raises(ValueError, match="unknown stretch kind"):
        stretch_from_dict({"kind": "log"})
    with pytest.raises(ValueError, match="constant"):
        estimate_asinh_stretch(np.ones((2, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, H, W\)"):
        AsinhStretch(softening=(1.0, 1.0), lower=(0.0, 0.0), upper=(1.0, 1.0)).forward(
            np.zeros((1, 3, 4, 4)))


def test_stretch_for_store(tmp_path, flux):
    path = tmp_path / "flux.zarr"
    writer = create_store(path, StoreSpec(image_shape=flux.shape[1:], image_dtype="float32",
                                          shard_size=8), num_items=len(flux))
    for shard in writer.pending_shards():
        a, b = writer.shard_bounds(shard)
        writer.write_shard(shard, flux[a:b], {})
    finalize_store(path)
    store = open_store(path)
    estimated = stretch_for_store(store)
    assert isinstance(estimated, AsinhStretch)
    assert estimated == estimate_asinh_stretch(flux)  # the sample covers this small store
    given = {"kind": "asinh", "softening": [1, 1, 1], "lower": [0, 0, 0], "upper": [5, 5, 5]}
    assert stretch_for_store(store, given) == stretch_from_dict(given)
    with pytest.raises(ValueError, match="uint8 stretch"):
        stretch_for_store(store, Uint8Stretch())
    with pytest.raises(ValueError, match="2 bands"):
        stretch_for_store(store, AsinhStretch((1, 1), (0, 0), (1, 1)))


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 3, 200, 300)])  # the second in blocks
def test_uint8_forward_into_out_is_exactly_torchs(shape):
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    expected = torch.from_numpy(x).float() / 127.5 - 1
    out = np.full(shape, np.nan, dtype=np.float32)
    assert Uint8Stretch().forward(x, out=out) is out
    assert torch.equal(torch.from_numpy(out), expected)
    assert torch.equal(torch.from_numpy(Uint8Stretch().forward(x)), expected)
    strided = x[..., ::2]  # not contiguous: the unblocked path
    assert torch.equal(torch.from_numpy(Uint8Stretch().forward(strided)), expected[..., ::2])
    with pytest.raises(ValueError, match="out must be a float32 array"):
        Uint8Stretch().forward(x, out=np.empty(shape, np.float64))


def test_asinh_forward_into_out(flux):
    stretch = estimate_asinh_stretch(flux)
    out = np.empty_like(flux)
    assert stretch.forward(flux, out=out) is out
    np.testing.assert_array_equal(out, stretch.forward(flux))
    with pytest.raises(ValueError, match="out must be"):
        stretch.forward(flux, out=np.empty(flux.shape[1:], flux.dtype))


def test_uint8_numpy_forward_is_torchs_bit_for_bit_in_small_and_blocked_arrays():
    values = np.arange(256, dtype=np.uint8)
    expected = torch.from_numpy(values).to(torch.float32).div_(127.5).sub_(1.0).numpy()
    small = np.broadcast_to(values, (3, 4, 256)).copy()  # below the block size
    large = np.broadcast_to(values, (8, 3, 128, 256)).copy()  # several blocks and a tail
    for x in (small, large):
        y = Uint8Stretch().forward(x)
        assert y.dtype == np.float32
        assert np.array_equal(y.reshape(-1, 256), np.broadcast_to(expected, (x.size // 256, 256)))
