"""Galaxy Zoo 2 style vote fractions for a synthetic galaxy, from its true shape.

A fixed number of simulated volunteers walk the GZ2 decision tree (Willett et
al. 2013, MNRAS 435, 2835). At each question every volunteer who reached it
picks one answer with probabilities that follow from the galaxy's truth
(bulge fraction, inclination, axis ratios, apparent size against the PSF).
Counting their answers gives per-question fractions like the GZ2 catalog's
``_fraction`` columns: each question reached by at least one volunteer sums to
1, a question nobody reached is all zeros, and the finite number of
volunteers makes the fractions soft rather than 0/1.

What the probabilities encode, and what they cannot:

* bulge-dominated galaxies are voted smooth, with roundness from the apparent
  axis ratio; disk-dominated ones features/disk; near edge-on disks (apparent
  disk axis ratio below ~0.3) edge-on, with a bulge shape from B/T;
* poorly resolved galaxies (half-light radius comparable to the seeing) are
  voted smooth more often, and somewhat as stars, as real volunteers do
  (the redshift bias that Hart et al. 2016 correct for);
* the images contain no bars, spiral arms, rings, dust lanes or mergers, so
  "bar" and "odd" get low baseline rates; "spiral" is a rule on resolved,
  disk-dominated, not edge-on galaxies and winding follows B/T along the Hubble
  sequence. A model can only learn these from disk dominance and size.
"""

from __future__ import annotations

import math

import numpy as np

# The 37 GZ2 answers in Kaggle order (Class1.1 ... Class11.6), as in galaxy_hpc/data/gz2.py.
QUESTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("t01_smooth_or_features", ("a01_smooth", "a02_features_or_disk", "a03_star_or_artifact")),
    ("t02_edgeon", ("a04_yes", "a05_no")),
    ("t03_bar", ("a06_bar", "a07_no_bar")),
    ("t04_spiral", ("a08_spiral", "a09_no_spiral")),
    (
        "t05_bulge_prominence",
        ("a10_no_bulge", "a11_just_noticeable", "a12_obvious", "a13_dominant"),
    ),
    ("t06_odd", ("a14_yes", "a15_no")),
    ("t07_rounded", ("a16_completely_round", "a17_in_between", "a18_cigar_shaped")),
    (
        "t08_odd_feature",
        (
            "a19_ring",
            "a20_lens_or_arc",
            "a21_disturbed",
            "a22_irregular",
            "a23_other",
            "a24_merger",
            "a38_dust_lane",
        ),
    ),
    ("t09_bulge_shape", ("a25_rounded", "a26_boxy", "a27_no_bulge")),
    ("t10_arms_winding", ("a28_tight", "a29_medium", "a30_loose")),
    ("t11_arms_number", ("a31_1", "a32_2", "a33_3", "a34_4", "a36_more_than_4", "a37_cant_tell")),
)
VOTE_COLUMNS: tuple[str, ...] = tuple(
    f"{q}_{a}_fraction" for q, answers in QUESTIONS for a in answers
)
QUESTION_COLUMNS: dict[str, tuple[str, ...]] = {
    q: tuple(f"{q}_{a}_fraction" for a in answers) for q, answers in QUESTIONS
}


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 50.0), -50.0)))


def _nearest(value: float, centres: tuple[float, ...], width: float) -> np.ndarray:
    """Soft assignment of value to the nearest of a few ordered categories."""
    w = np.exp(-0.5 * ((value - np.asarray(centres)) / width) ** 2) + 1e-3
    return w / w.sum()


def answer_probabilities(
    *,
    bulge_fraction: float,
    bulge_sersic_n: float,
    disk_axis_ratio: float,
    bulge_axis_ratio: float,
    half_light_radius_arcsec: float,
    psf_fwhm_arcsec: float,
) -> dict[str, np.ndarray]:
    """Per-question probability that one volunteer picks each answer."""
    bt = bulge_fraction
    hlr, fwhm = half_light_radius_arcsec, psf_fwhm_arcsec
    resolved = hlr / (hlr + 0.5 * fwhm)  # ~0.3 for a point-like source, ->1 when large
    # The PSF makes small galaxies look rounder. Eyes judge shape from the outer
    # isophotes, which the seeing affects less than the second moments: hence
    # half the PSF's Gaussian sigma added in quadrature, not all of it.
    blur = 0.5 * fwhm / 2.355

    def seen(q: float) -> float:
        return math.sqrt((q * q * hlr * hlr + blur**2) / (hlr * hlr + blur**2))

    q_disk_seen = seen(disk_axis_ratio)
    q_seen = seen(bt * bulge_axis_ratio + (1 - bt) * disk_axis_ratio)
    edge = _sigmoid((0.33 - q_disk_seen) / 0.04) * (1 - bt)

    p_star = 0.01 + 0.25 * _sigmoid((0.35 * fwhm - hlr) / (0.05 * fwhm))
    p_feat = _sigmoid(((1 - bt) - 0.5) / 0.1 + 4.0 * edge - 4.0 * (0.7 - resolved))
    p = {
        "t01_smooth_or_features": [(1 - p_star) * (1 - p_feat), (1 - p_star) * p_feat, p_star],
    }
    p_edge = _sigmoid((0.33 - q_disk_seen) / 0.04 + (0.4 - bt) / 0.4)
    p["t02_edgeon"] = [p_edge, 1 - p_edge]
    p["t03_bar"] = [0.06, 0.94]
    p_spiral = _sigmoid(((1 - bt) - 0.55) / 0.1) * (0.2 + 0.7 * resolved)
    p["t04_spiral"] = [p_spiral, 1 - p_spiral]
    p["t05_bulge_prominence"] = _nearest(bt, (0.0, 0.15, 0.4, 0.75), 0.1)
    p_odd = 0.05 + 0.08 * edge
    p["t06_odd"] = [p_odd, 1 - p_odd]
    p["t07_rounded"] = _nearest(q_seen, (0.92, 0.65, 0.3), 0.1)
    dust = 0.08 + 0.5 * edge
    others = np.array([0.12, 0.05, 0.15, 0.12, 0.35, 0.11])
    p["t08_odd_feature"] = np.append(others / others.sum() * (1 - dust), dust)
    no_bulge = _sigmoid((0.08 - bt) / 0.03)
    boxy = (1 - no_bulge) * (0.3 if bulge_sersic_n < 2.0 else 0.1)
    p["t09_bulge_shape"] = [1 - no_bulge - boxy, boxy, no_bulge]
    p["t10_arms_winding"] = _nearest(bt, (0.45, 0.2, 0.0), 0.12)
    cant_tell = 0.15 + 0.5 * (1 - resolved)
    arms = np.array([0.06, 0.55, 0.18, 0.08, 0.05])
    p["t11_arms_number"] = np.append(arms / arms.sum() * (1 - cant_tell), cant_tell)
    return {k: np.asarray(v, dtype=float) / np.sum(v) for k, v in p.items()}


def volunteer_fractions(
    rng: np.random.Generator, probs: dict[str, np.ndarray], num_volunteers: int
) -> np.ndarray:
    """Walk num_volunteers through the tree; return the 37 fractions in VOTE_COLUMNS order."""
    counts: dict[str, np.ndarray] = {}

    def ask(question: str, reached: int) -> np.ndarray:
        counts[question] = rng.multinomial(reached, probs[question])
        return counts[question]

    smooth, features, _star = ask("t01_smooth_or_features", num_volunteers)
    ask("t07_rounded", smooth)
    edge_yes, edge_no = ask("t02_edgeon", features)
    ask("t09_bulge_shape", edge_yes)
    ask("t03_bar", edge_no)
    spiral_yes, _ = ask("t04_spiral", edge_no)
    ask("t10_arms_winding", spiral_yes)
    ask("t11_arms_number", spiral_yes)
    ask("t05_bulge_prominence", edge_no)
    odd_yes, _ = ask("t06_odd", smooth + features)
    ask("t08_odd_feature", odd_yes)

    out = []
    for question, _answers in QUESTIONS:
        c = counts[question].astype(float)
        total = c.sum()
        out.append(c / total if total > 0 else c)
    return np.concatenate(out)
