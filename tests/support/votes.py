"""GZ2 vote fractions written by answer code, for captioning and tree tests."""

from __future__ import annotations

import numpy as np


def votes(*codes: str, strength: float = 0.8) -> np.ndarray:
    """Fractions where each named answer wins its question with `strength`, the rest of
    the question shared evenly; questions not named stay 0 (nobody reached them)."""
    from galaxy_hpc.data.gz2 import GZ2_TREE

    f = np.zeros(37)
    for code in codes:
        answer = GZ2_TREE.answer(code)
        question = GZ2_TREE.question(answer.question)
        others = [a.index for a in question.answers if a is not answer]
        f[others] = (1 - strength) / len(others)
        f[answer.index] = strength
    return f


def tree_counts(fractions: np.ndarray, num_volunteers: int) -> np.ndarray:
    """(N, 37) int64 vote counts as GZ2 has them: each question's fractions times the
    volunteers whose answers led them to it (the tree's route), rounded."""
    from galaxy_hpc.data.gz2 import QUESTIONS, question_reach

    fractions = np.asarray(fractions, dtype=np.float64)
    reached = np.rint(question_reach(fractions) * num_volunteers)
    counts = np.zeros_like(fractions)
    for q in QUESTIONS:
        counts[:, q.columns] = np.rint(fractions[:, q.columns] * reached[:, [q.number - 1]])
    return counts.astype(np.int64)


def gz2_table_with_counts(ids, counts: np.ndarray):
    """An astropy Table shaped like Hart et al. (2016)'s gz2_hart16: dr7objid, then per
    answer its `_count`, `_fraction` (rounded to 3 decimals, as the catalog has them)
    and `_debiased` columns."""
    from astropy.table import Table

    from galaxy_hpc.data.gz2 import ANSWERS, column_name, vote_counts_to_fractions

    fractions = vote_counts_to_fractions(counts)
    table = Table({"dr7objid": np.asarray(ids, dtype=np.int64)})
    table["total_votes"] = np.asarray(counts).sum(axis=1)
    for a in ANSWERS:
        table[column_name(a, "count")] = np.asarray(counts[:, a.index], dtype=np.int64)
        table[column_name(a, "fraction")] = np.round(fractions[:, a.index], 3)
        table[column_name(a, "debiased")] = np.round(fractions[:, a.index] * 0.9, 3)
    return table
