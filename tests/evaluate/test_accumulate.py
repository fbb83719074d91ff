"""evaluate.accumulate: the upper-triangle sum of outer products is the full one, exactly
enough for FID, whatever the block size and dimension."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galaxy_hpc.evaluate.accumulate import (
    StoreAccumulator,
    add_upper_outer,
    from_upper_triangle,
    upper_triangle,
)


@pytest.mark.parametrize("dim, block", [(300, 128), (256, 256), (10, 256), (513, 64)])
def test_blocked_upper_outer_products_equal_the_full_product(dim, block):
    generator = torch.Generator().manual_seed(dim)
    batches = [torch.randn(rows, dim, generator=generator, dtype=torch.float64) + 3.0
               for rows in (64, 17, 64)]
    outer = torch.zeros(dim, dim, dtype=torch.float64)
    for batch in batches:
        add_upper_outer(outer, batch, block=block)
    everything = torch.cat(batches)
    expected = (everything.T @ everything).numpy()
    mirrored = from_upper_triangle(upper_triangle(outer.numpy()), dim)
    np.testing.assert_allclose(mirrored, expected, rtol=1e-12, atol=1e-9)
    assert np.array_equal(mirrored, mirrored.T)


def test_packed_sums_unpack_to_the_moments_of_the_features():
    dim, num = 300, 200
    features = np.random.default_rng(0).normal(2.0, 1.0, (num, dim)).astype(np.float32)
    acc = StoreAccumulator(num, {"fid": "pool"}, {"pool": dim}, max_kept=0, isc_splits=1,
                           seed=0)
    for start in range(0, num, 64):
        acc.add(start, {"pool": torch.from_numpy(features[start:start + 64])})
    packed = acc.packed()
    assert packed.shape == (acc.packed_size(),) == (1 + dim + dim * (dim + 1) // 2,)
    stats = acc.stats(packed, [acc.local_kept()])
    as64 = features.astype(np.float64)
    assert stats.moments.count == num
    np.testing.assert_allclose(stats.moments.total, as64.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.moments.outer, as64.T @ as64, rtol=1e-12)
