"""Rare classes and the row weights that oversample them (the augmentation use case).

A row's classes are its class column's value, or the tags of its caption
(`sdss, spiral galaxy, merger` -> sdss, spiral galaxy, merger), so a ringed spiral is
both "spiral galaxy" and "ring galaxy". A class is rare when fewer than `rare_fraction`
of the rows carry it; a row carrying any rare class gets weight `factor`, the others 1.
Tags every row carries (the survey prefix) are never rare, so they need no special case.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from galaxy_hpc.data.captions import caption_tags


@dataclass(frozen=True)
class Oversampling:
    weights: np.ndarray  # (num_rows,) float64
    rare: np.ndarray  # (num_rows,) bool: the row carries a rare class
    rare_classes: dict[str, float]  # class -> fraction of rows carrying it

    def report(self) -> dict:
        """Provenance: the rare classes, their share in the source and in the catalog."""
        total = float(self.weights.sum())
        share = float(self.weights[self.rare].sum()) / total if total else 0.0
        return {"rare_classes": {k: round(v, 6) for k, v in sorted(self.rare_classes.items())},
                "rare_rows_in_source": round(float(self.rare.mean()), 6),
                "rare_rows_expected_in_catalog": round(share, 6)}


def row_classes(captions: np.ndarray | None, labels: np.ndarray | None) -> list[list[str]]:
    if labels is not None:
        return [[str(v)] for v in labels]
    assert captions is not None
    return [caption_tags(str(c)) for c in captions]


def oversampling(classes: list[list[str]], *, factor: float, rare_fraction: float,
                 where: str) -> Oversampling:
    num_rows = len(classes)
    counts = Counter(tag for tags in classes for tag in set(tags))
    frequency = {tag: n / num_rows for tag, n in counts.items()}
    rare_classes = {tag: f for tag, f in frequency.items() if f < rare_fraction}
    if not rare_classes:
        rarest = ", ".join(f"{tag} ({f:.1%})" for tag, f in
                           sorted(frequency.items(), key=lambda kv: kv[1])[:4])
        raise ValueError(f"conditions.oversample: no class of {where} is carried by fewer than "
                         f"rare_fraction={rare_fraction} of the rows (the rarest: {rarest}); "
                         "raise conditions.rare_fraction or set oversample: 1")
    rare = np.array([any(tag in rare_classes for tag in tags) for tags in classes], dtype=bool)
    weights = np.where(rare, float(factor), 1.0)
    return Oversampling(weights=weights, rare=rare, rare_classes=rare_classes)
