"""What the regressor learns from a store: per-question fractions and vote counts.

Targets are read once per process into memory (37 floats per galaxy, twice with counts:
~70 MB for all of GZ2) and looked up by each batch's store indices, so the training
dataset needs no target columns of its own.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from galaxy_hpc.data.gz2 import ANSWERS, column_name, normalise_per_question, question_reach
from hpc.store import Store

NUMERIC = ("float64", "float32", "int64")


@dataclass(frozen=True)
class VoteTargets:
    fractions: np.ndarray  # (N, 37) float32 per-question fractions (unreached: 0)
    reach: np.ndarray  # (N, 11) float32 share of volunteers reaching each question
    counts: np.ndarray | None  # (N, 37) float32 vote counts, when the store has them
    columns: list[str]  # the 37 store columns the fractions came from
    loss: str  # "dirichlet_multinomial" or "cross_entropy"


def _present(store: Store, names: list[str]) -> list[str]:
    """The names that are not numeric columns of the store."""
    return [n for n in names if store.spec.columns.get(n) not in NUMERIC]


def read_targets(store: Store, *, suffix: str, loss: str) -> VoteTargets:
    """The store's GZ2 targets; `loss` "auto" picks dirichlet_multinomial when all 37
    `<stem>_count` columns exist. Fractions come from `<stem>_<suffix>`, renormalised per
    question (Hart16's debiased fractions do not sum to 1), or from the counts."""
    fraction_columns = [column_name(a, suffix) for a in ANSWERS]
    count_columns = [column_name(a, "count") for a in ANSWERS]
    missing_counts = _present(store, count_columns)
    missing_fractions = _present(store, fraction_columns)
    if loss == "auto":
        loss = "cross_entropy" if missing_counts else "dirichlet_multinomial"
    if loss == "dirichlet_multinomial" and missing_counts:
        raise ValueError(f"model.loss dirichlet_multinomial needs vote counts: {store.path} has "
                         f"no numeric column {missing_counts[0]!r} (and {len(missing_counts) - 1}"
                         " more); use loss: cross_entropy (or auto)")
    counts = None
    if not missing_counts:
        counts = np.stack([store.read_column(c) for c in count_columns], axis=1)
        counts = np.nan_to_num(counts.astype(np.float64), nan=0.0)
        if (counts < 0).any():
            raise ValueError(f"{store.path}: vote count columns hold negative values")
    if missing_fractions and counts is None:
        raise ValueError(f"{store.path} has no numeric column {missing_fractions[0]!r}: the "
                         f"regressor's targets are the 37 GZ2 `<stem>_{suffix}` columns "
                         "(model.target_suffix), as ingest and synth write them")
    if missing_fractions:
        print(f"note: {store.path} has no {suffix} columns: fractions from the vote counts",
              file=sys.stderr)
        raw, fraction_columns = counts, count_columns
    else:
        raw = np.stack([store.read_column(c) for c in fraction_columns], axis=1)
    raw = np.asarray(raw, dtype=np.float64)
    if np.isnan(raw).any():
        print(f"note: {store.path}: NaN vote fractions read as 0 (question not reached)",
              file=sys.stderr)
    fractions = normalise_per_question(np.clip(np.nan_to_num(raw, nan=0.0), 0.0, None))
    return VoteTargets(fractions.astype(np.float32), question_reach(fractions).astype(np.float32),
                       None if counts is None else counts.astype(np.float32),
                       fraction_columns, loss)
