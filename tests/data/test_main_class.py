"""Main morphological classes from vote fractions and from captions agree."""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_hpc.data.captions import Captioner
from galaxy_hpc.data.gz2 import ANSWERS, NUM_ANSWERS
from galaxy_hpc.data.main_class import (
    MAIN_CLASSES,
    caption_classes,
    fractions_from_columns,
    main_classes,
)


def votes(**winners: float) -> np.ndarray:
    """A vote vector from {code: fraction}; the rest of each touched question gets 1 - f."""
    f = np.zeros(NUM_ANSWERS)
    for code, value in winners.items():
        answer = next(a for a in ANSWERS if a.code == code)
        others = [a for a in ANSWERS if a.question == answer.question and a is not answer]
        f[answer.index] = value
        for other in others:
            f[other.index] = (1 - value) / len(others)
    return f


CASES = {
    "smooth": votes(a01=0.8, a16=0.7, a15=0.9),
    "artifact": votes(a03=0.6),
    "edge_on": votes(a02=0.9, a04=0.8, a25=0.6, a15=0.9),
    "spiral": votes(a02=0.9, a05=0.9, a07=0.8, a08=0.7, a12=0.6, a28=0.6, a32=0.6, a15=0.9),
    "disk": votes(a02=0.9, a05=0.9, a07=0.8, a09=0.7, a11=0.6, a15=0.9),
}


def test_every_class_from_fractions_and_from_their_captions():
    fractions = np.stack(list(CASES.values()))
    assert list(main_classes(fractions)) == list(CASES)
    assert list(caption_classes(Captioner().captions(fractions))) == list(CASES)
    assert set(CASES) == set(MAIN_CLASSES)


def test_unreached_questions_and_bad_shapes():
    assert main_classes(np.zeros((1, NUM_ANSWERS)))[0] == "smooth"  # a tie in Q1: first answer
    with pytest.raises(ValueError, match=r"\(N, 37\)"):
        main_classes(np.zeros((2, 36)))
    with pytest.raises(ValueError, match="catalog.fits: no GZ2 vote fraction columns"):
        fractions_from_columns({"redshift": np.zeros(3)}, "catalog.fits")
