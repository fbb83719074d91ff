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
