"""Per-class scores of a classifier, in the words astronomers use for samples.

- completeness (recall): of the galaxies truly of class k, the fraction labelled k;
- purity (precision): of the galaxies labelled k, the fraction truly of class k;
- accuracy over all galaxies, and the balanced accuracy (mean completeness), which a
  rare class moves as much as a common one.

A class never predicted has purity NaN (undefined), not 0: "no sample" and "a sample of
pure contaminants" are different findings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    truth = np.asarray(truth, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    if truth.shape != predicted.shape:
        raise ValueError(f"truth {truth.shape} and predictions {predicted.shape} differ")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def class_scores(matrix: np.ndarray, names: Sequence[str]) -> dict:
    """Completeness, purity and support per class, accuracy and balanced accuracy."""
    matrix = np.asarray(matrix, dtype=np.float64)
    hits = np.diag(matrix)
    support = matrix.sum(axis=1)
    labelled = matrix.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        completeness = np.where(support > 0, hits / support, np.nan)
        purity = np.where(labelled > 0, hits / labelled, np.nan)
    per_class = {
        name: {"completeness": float(completeness[k]), "purity": float(purity[k]),
               "support": int(support[k])}
        for k, name in enumerate(names)}
    total = matrix.sum()
    return {"accuracy": float(hits.sum() / total) if total else float("nan"),
            "balanced_accuracy": float(np.nanmean(completeness)) if np.any(support > 0)
            else float("nan"),
            "per_class": per_class}
