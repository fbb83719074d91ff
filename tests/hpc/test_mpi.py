"""hpc.mpi: deterministic work splitting and exact reductions (in one process)."""

from __future__ import annotations

import numpy as np
import pytest

from hpc.mpi import Moments, split_range, split_strided


@pytest.mark.parametrize("num_items", [0, 1, 7, 64, 1001])
@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
def test_split_range_covers_everything_once_and_balances(num_items, world_size):
    parts = [split_range(num_items, rank, world_size) for rank in range(world_size)]
    flat = [i for part in parts for i in part]
    assert flat == list(range(num_items))  # contiguous, in order, no gaps or repeats
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_split_strided_interleaves():
    assert [list(split_strided(7, r, 3)) for r in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]


@pytest.mark.parametrize("rank, world", [(2, 2), (-1, 2), (0, 0)])
def test_split_rejects_bad_rank(rank, world):
    with pytest.raises(ValueError, match="not in a world"):
        split_range(10, rank, world)


def test_moments_match_numpy_and_merge():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(500, 6))
    whole = Moments(6)
    whole.add(data)
    a, b = Moments(6), Moments(6)
    a.add(data[:123])
    b.add(data[123:])
    merged = a.merge(b)
    np.testing.assert_allclose(merged.mean, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.covariance(), np.cov(data, rowvar=False), rtol=1e-10)
    np.testing.assert_allclose(merged.total, whole.total, rtol=1e-14)  # only summation order differs
    assert merged.count == 500


def test_moments_errors():
    m = Moments(3)
    with pytest.raises(ValueError, match="no samples"):
        _ = m.mean
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        m.add(np.zeros((2, 4)))
    m.add(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="need more than 1 samples"):
        m.covariance()


def test_the_mpich_wheel_runs_over_ofi_unless_told_otherwise():
    import os
    import subprocess
    import sys

    code = "import hpc, os; print(os.environ.get('MPIR_CVAR_CH4_NETMOD'))"
    env = {k: v for k, v in os.environ.items() if k != "MPIR_CVAR_CH4_NETMOD"}
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True)
    assert chosen.stdout.strip() == "ofi"  # this venv has PyPI's mpich
    kept = subprocess.run([sys.executable, "-c", code], env={**env, "MPIR_CVAR_CH4_NETMOD": "ucx"},
                          capture_output=True, text=True, check=True)
    assert kept.stdout.strip() == "ucx"
