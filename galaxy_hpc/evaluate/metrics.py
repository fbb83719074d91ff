"""Metrics from combined statistics, on rank 0.

The Frechet distance between N(mu1, S1) and N(mu2, S2) is
|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2). S1 S2 is not symmetric, and the
eigenvalues of it that torch-fidelity takes can come out slightly complex or negative
from rounding; here tr sqrt(S1 S2) = tr sqrt(A) with A = sqrt(S1) S2 sqrt(S1), which is
symmetric positive semi-definite (same eigenvalues), so symmetric eigensolvers apply and
rounding negatives are clipped to zero. For full-rank covariances both agree to ~1e-12.

KID and precision/recall run torch-fidelity's own estimators on the kept features
(generated first, real second, as torch-fidelity orders its inputs), so with all features
kept they are torch-fidelity's numbers.
"""

from __future__ import annotations

import numpy as np
import torch

from galaxy_hpc.evaluate.accumulate import IscSums
from hpc.mpi import Moments


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature dimensions differ: {mu1.shape} and {mu2.shape}")
    root = _sqrt_psd(sigma1)
    inner = root @ sigma2 @ root
    eigenvalues = np.linalg.eigvalsh((inner + inner.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def fid_from_moments(real: Moments, generated: Moments) -> float:
    return frechet_distance(real.mean, real.covariance(), generated.mean,
                            generated.covariance())


def inception_score(sums: IscSums) -> tuple[float, float]:
    """(mean, std) over the splits, as torch-fidelity reports them (std with ddof 0)."""
    scores = sums.scores()
    return float(np.mean(scores)), float(np.std(scores))


def kernel_inception_distance(generated: np.ndarray, real: np.ndarray, *, subsets: int,
                              subset_size: int, seed: int) -> tuple[float, float]:
    from torch_fidelity.metric_kid import (
        KEY_METRIC_KID_MEAN,
        KEY_METRIC_KID_STD,
        kid_features_to_metric,
    )

    out = kid_features_to_metric(torch.from_numpy(generated), torch.from_numpy(real),
                                 kid_subsets=subsets, kid_subset_size=subset_size,
                                 rng_seed=seed, verbose=False)
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]


def precision_recall(generated: np.ndarray, real: np.ndarray, *,
                     neighborhood: int) -> dict[str, float]:
    """Precision, recall and F-score (Kynkaanniemi et al. 2019), in blocks of 1000 rows
    (save_cpu_ram): a few MB of distances at a time instead of kept x kept."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    out = prc_features_to_metric(torch.from_numpy(generated), torch.from_numpy(real),
                                 prc_neighborhood=neighborhood, prc_batch_size=1000,
                                 save_cpu_ram=True, verbose=False)
    return {"precision": out["precision"], "recall": out["recall"], "f_score": out["f_score"]}
