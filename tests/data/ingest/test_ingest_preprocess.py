"""Centre-crop and resize: exact pixel-area resampling for flux, PIL Lanczos for 8-bit images."""

from __future__ import annotations

import numpy as np
import pytest
from ingest_helpers import blob, rgb
from PIL import Image

from galaxy_hpc.data.ingest.preprocess import area_weights, float_image, uint8_image
from galaxy_hpc.data.ingest.records import RejectError


@pytest.mark.parametrize("n_in, offset, span, n_out", [(64, 0, 64, 24), (70, 15, 40, 20),
                                                         (41, 0.5, 40, 17), (16, 0, 16, 40)])
def test_area_weights_spread_each_pixel_exactly_once(n_in, offset, span, n_out):
    weights = area_weights(n_in, offset, span, n_out)
    inside = np.arange(n_in)
    inside = (inside >= np.ceil(offset)) & (inside + 1 <= np.floor(offset + span))
    np.testing.assert_allclose(weights.sum(axis=0)[inside], 1.0)  # flux of a pixel: all kept
    np.testing.assert_allclose(weights.sum(axis=1), span / n_out)  # footprint of an output
    assert weights.min() >= 0


def test_float_image_rules():
    data = blob(30, 30, flux=50.0)[None]
    out, side = float_image(data, 10, channels=1)
    assert side == 30 and out.dtype == np.float32
    assert out.sum() == pytest.approx(50.0, rel=1e-6)
    mean, _ = float_image(data, 10, channels=1, flux="surface_brightness")
    assert mean.mean() == pytest.approx(data.mean(), rel=1e-6)
    with pytest.raises(RejectError, match="band_count: 1 band"):
        float_image(data, 10, channels=3)
    with pytest.raises(RejectError, match="all_nan"):
        float_image(np.full((1, 8, 8), np.inf), 4, channels=1)
    with pytest.raises(RejectError, match="wrong_shape"):
        float_image(np.zeros((1, 1, 8, 8)), 4, channels=1)


def test_sixteen_bit_grey_is_scaled_to_eight_bits(tmp_path):
    grey = (blob(32, 32) / blob(32, 32).max() * 65535).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as img:
        out, side = uint8_image(img, 32)
    assert side == 32 and out.shape == (3, 32, 32)
    np.testing.assert_array_equal(out[1], (grey >> 8).astype(np.uint8))


def test_jpeg_draft_decoding_matches_a_full_decode(tmp_path):
    Image.fromarray(rgb(512, 600, 3, sigma=40.0)).save(tmp_path / "big.jpg", quality=95)
    with Image.open(tmp_path / "big.jpg") as img:
        fast, side = uint8_image(img, 64, draft=True)
    with Image.open(tmp_path / "big.jpg") as img:
        full, _ = uint8_image(img, 64, draft=False)
    assert side == 512
    assert np.abs(fast.astype(int) - full.astype(int)).mean() < 1.5


def test_sixteen_bit_counts_that_would_be_black_are_a_reject(tmp_path):
    counts = (blob(32, 32) / blob(32, 32).max() * 900).astype(np.uint16)  # raw counts
    Image.fromarray(counts).save(tmp_path / "raw.png")
    with Image.open(tmp_path / "raw.png") as img:
        with pytest.raises(RejectError, match="pixel_type: .* reach only 900: .* keeps 4 grey"):
            uint8_image(img, 32)
