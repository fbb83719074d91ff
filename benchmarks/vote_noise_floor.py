"""How low can a morphology MAE go on a synthetic store? The volunteers' own noise.

A synthetic galaxy's GZ2 fractions are counts of a finite number of simulated volunteers
(galaxy_hpc/data/synth/votes.py, 44 by default), each picking an answer with
probabilities that follow from the galaxy's truth. A predictor, however good, can at
best read those probabilities off the image; the stored fractions scatter around them
by the binomial noise of the volunteers who reached the question, which grows down the
tree as fewer of them reach it. So the MAE of `evaluate morphology-fidelity` has a
floor below any predictor's, and a generator conditioned on the stored fractions meets
the same noise from the other side.

This recomputes every galaxy's answer probabilities from its truth (the store's synth
seed and config: the same draws as `galaxy-hpc synth`, checked against the truth
columns) and reads them as a perfect predictor would, counted exactly as the
evaluation counts (fractions renormalised per question, a question counting where at
least `--min-reach` of the volunteers reached it, MAE pooled over its (galaxy, answer)
pairs). Printed per question: the oracle's MAE (the noise floor of the requested
fractions), the number of galaxies counted, and, given `--predictor`, its floor on the
same galaxies (its training's held-out ones) beside it.

    PYTHONPATH=$PWD python benchmarks/vote_noise_floor.py runs/mf/synth32.zarr \
        [--predictor runs/mf/dino2400/predictor] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from galaxy_hpc.data.gz2 import QUESTIONS
from galaxy_hpc.data.synth.config import SynthConfig
from galaxy_hpc.data.synth.galaxies import _STREAM_PARAMS, _generator
from galaxy_hpc.data.synth.physics import draw_params
from galaxy_hpc.data.synth.votes import QUESTIONS as VOTE_QUESTIONS
from galaxy_hpc.data.synth.votes import answer_probabilities
from galaxy_hpc.evaluate.config import MorphologyFidelityConfig
from galaxy_hpc.evaluate.morphology import predict_fractions
from galaxy_hpc.evaluate.morphology_fidelity import (batch_sums, floor_galaxies, fractions,
                                                     pooled_mae)
from hpc.store import open_store


def oracle_fractions(store: Any, rows: np.ndarray) -> np.ndarray:
    """(n, 37) answer probabilities of the given rows, from their truth."""
    attrs = store.attrs
    cfg = SynthConfig(**attrs["synth_config"])
    seed = int(attrs["seed"])
    stored = store.read_column("bulge_fraction")
    out = np.empty((len(rows), sum(len(answers) for _, answers in VOTE_QUESTIONS)))
    for k, row in enumerate(rows):
        params = draw_params(_generator(seed, int(row), _STREAM_PARAMS), cfg)
        if not np.isclose(params.bulge_fraction, stored[row]):
            raise SystemExit(f"{store.path}: row {row}'s truth is not what synth seed {seed} "
                             "draws: not a galaxy-hpc synth store, or another version")
        probs = answer_probabilities(
            bulge_fraction=params.bulge_fraction, bulge_sersic_n=params.bulge_sersic_n,
            disk_axis_ratio=params.disk_axis_ratio, bulge_axis_ratio=params.bulge_axis_ratio,
            half_light_radius_arcsec=params.half_light_radius_arcsec,
            psf_fwhm_arcsec=cfg.psf_fwhm_arcsec)
        out[k] = np.concatenate([probs[question] for question, _ in VOTE_QUESTIONS])
    return out


def per_question(sums: np.ndarray) -> list[tuple[float | None, int]]:
    """(MAE, galaxies counted) of each question."""
    out = []
    for q in QUESTIONS:
        mae, pairs = pooled_mae(sums, q.columns)
        out.append((mae, pairs // len(range(37)[q.columns])))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store")
    parser.add_argument("--predictor", help="a vote predictor folder: its floor beside")
    parser.add_argument("--min-reach", type=float, default=0.5)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    store = open_store(args.store)
    cfg = MorphologyFidelityConfig(generated=args.store, real=args.store,
                                   predictor=args.predictor or "", min_reach=args.min_reach)
    if args.predictor:
        rows, described, _ = floor_galaxies(cfg, store)
    else:
        rows, described = np.arange(len(store)), f"all {len(store):,} galaxies"
    truth = fractions(store, "fraction", rows)
    oracle = per_question(batch_sums(truth, oracle_fractions(store, rows),
                                     min_reach=args.min_reach, num_bins=1))
    found: dict[str, Any] = {"store": args.store, "galaxies": described,
                             "min_reach": args.min_reach, "questions": []}
    predicted = None
    if args.predictor:
        from galaxy_hpc.data.stretch import stretch_for_store
        from galaxy_hpc.models.vote_predictor import load_vote_predictor

        predictor = load_vote_predictor(args.predictor)
        images = store.read_images_at(rows)
        p = predict_fractions(predictor, images, stretch_for_store(store))
        predicted = per_question(batch_sums(truth, np.asarray(p, dtype=np.float64),
                                            min_reach=args.min_reach, num_bins=1))
    print(f"{described} of {args.store} (min reach {args.min_reach:g})")
    print(f"{'question':<24} {'galaxies':>8} {'oracle MAE':>10}"
          + (f" {'predictor MAE':>13}" if predicted else ""))
    for k, q in enumerate(QUESTIONS):
        mae, n = oracle[k]
        row = {"question": q.number, "slug": q.slug, "galaxies": n, "oracle_mae": mae}
        line = f"Q{q.number:<2} {q.slug:<20} {n:>8} {'-' if mae is None else f'{mae:.3f}':>10}"
        if predicted:
            row["predictor_mae"] = predicted[k][0]
            line += f" {'-' if predicted[k][0] is None else f'{predicted[k][0]:.3f}':>13}"
        found["questions"].append(row)
        print(line)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(found, handle, indent=2)
    return found


if __name__ == "__main__":
    main()
