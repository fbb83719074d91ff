"""Does a generated galaxy follow its condition? The check galaxyCGAN failed.

galaxyCGAN's images did not scale with the condition: more stellar mass sometimes gave
a fainter galaxy. The measure here is the shared one (galaxy_hpc.data.photometry): the
total flux and half-light radius of each generated galaxy, measured in the store's
units, and their Spearman rank correlation with the requested condition (log stellar
mass by default), overall and within quantile bins of another condition (redshift by
default; in a flux-limited sample mass and redshift are correlated, and distance dims
and shrinks everything, so only the per-bin figures say whether mass alone acts as it
should). The same numbers computed on the store's real images are the ceiling a
perfect generator would reach on that data (`reference`).

Conditions are real store rows spread evenly over the store, so the generated sample
has the data's joint distribution of (redshift, mass); seeds are the row numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from galaxy_hpc.data.photometry import Consistency, consistency, measure

QUANTITIES = ("flux", "size")


def evaluation_rows(num_items: int, count: int) -> np.ndarray:
    """`count` store indices spread evenly (deterministic)."""
    count = min(count, num_items)
    return np.unique(np.linspace(0, num_items - 1, count).round().astype(np.int64))


def measure_consistency(images: np.ndarray, conditions: np.ndarray, names: Sequence[str], *,
                        requested: str, by: str | None,
                        num_bins: int = 3) -> dict[str, Consistency]:
    """{"flux": ..., "size": ...}: rank correlation of the measured total flux and
    half-light radius of `images` (N, C, H, W, store units) with the `requested`
    condition, per bin of `by`."""
    names = list(names)
    conditions = np.asarray(conditions, dtype=np.float64)
    if conditions.shape != (len(images), len(names)):
        raise ValueError(f"conditions must be ({len(images)}, {len(names)}), got "
                         f"{conditions.shape}")
    photometry = measure(images)
    wanted = conditions[:, names.index(requested)]
    binned = conditions[:, names.index(by)] if by is not None else None
    return {"flux": consistency(wanted, photometry.total_flux, by=binned, num_bins=num_bins),
            "size": consistency(wanted, photometry.half_light_radius, by=binned,
                                num_bins=num_bins)}


def as_terms(found: dict[str, Consistency]) -> dict[str, float]:
    """Flat names for the training log: consistency_flux, consistency_flux_bin0, ..."""
    terms: dict[str, float] = {}
    for quantity in QUANTITIES:
        result = found[quantity]
        terms[f"consistency_{quantity}"] = result.rho
        for k, rho in enumerate(result.bin_rho):
            terms[f"consistency_{quantity}_bin{k}"] = rho
    return terms


def report(generate: Callable[[np.ndarray, Sequence[int]], np.ndarray], store: Any,
           names: Sequence[str], *, requested: str, by: str | None, num_samples: int,
           num_bins: int = 3) -> dict[str, Any]:
    """The consistency of a generator (generate(conditions, seeds) -> store-unit images)
    on `num_samples` store rows, beside the same measure on those rows' real images."""
    rows, conditions = evaluation_conditions(store, names, num_samples)
    return compare(generate(conditions, rows.tolist()), store.read_images_at(rows), conditions,
                   names, requested=requested, by=by, num_bins=num_bins)


def evaluation_conditions(store: Any, names: Sequence[str],
                          num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, their conditions (N, K) in the order of `names`): the rows a report judges."""
    rows = evaluation_rows(len(store), num_samples)
    return rows, np.stack([store.read_column(n)[rows] for n in names], axis=1)


def compare(generated_images: np.ndarray, real_images: np.ndarray, conditions: np.ndarray,
            names: Sequence[str], *, requested: str, by: str | None,
            num_bins: int = 3) -> dict[str, Any]:
    """The report of `report` from images already drawn for `conditions`."""
    generated = measure_consistency(generated_images, conditions, names,
                                    requested=requested, by=by, num_bins=num_bins)
    real = measure_consistency(real_images, conditions, names,
                               requested=requested, by=by, num_bins=num_bins)
    return {"requested": requested, "by": by, "num_samples": int(len(conditions)),
            "measured": {"flux": "total flux (photometry.measure), store units",
                         "size": "half-light radius, pixels"},
            "generated": {q: _strict(generated[q].to_dict()) for q in QUANTITIES},
            "reference_real_images": {q: _strict(real[q].to_dict()) for q in QUANTITIES}}


def _strict(found: dict[str, Any]) -> dict[str, Any]:
    """NaN (a bin too small or a constant measure) as null, so that the file is strict JSON."""
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return [clean(v) for v in value] if isinstance(value, list) else value

    return {key: clean(value) for key, value in found.items()}


def summary_line(found: dict[str, Any]) -> str:
    def one(value: float | None) -> str:
        return "nan" if value is None or not math.isfinite(value) else f"{value:+.2f}"

    def show(values: Sequence[float | None]) -> str:
        return ", ".join(one(v) for v in values)

    gen, real = found["generated"], found["reference_real_images"]
    by = f" per {found['by']} bin" if found["by"] else ""
    return (f"conditioning consistency ({found['num_samples']} generated galaxies, Spearman "
            f"of {found['requested']} with flux{by}): [{show(gen['flux']['bin_rho'])}] "
            f"overall {one(gen['flux']['rho'])}; with size [{show(gen['size']['bin_rho'])}]; "
            f"real images: flux [{show(real['flux']['bin_rho'])}], size "
            f"[{show(real['size']['bin_rho'])}]")
