"""`evaluate morphology`: do generated galaxies look like what was asked for?

A model conditioned on GZ2 vote fractions should produce a galaxy that a vote-fraction
predictor (any galaxy_hpc.models.vote_predictor.VotePredictor: the DINOv2 regressor, or
one a test makes) scores with those fractions. Each rank predicts its batches of the
generated store (images in the predictor's training space: the store's stretch to
[-1, 1], resized to its `image_size`) and accumulates, per answer, the sums that Pearson's
r and the mean absolute error need (n, sum x, sum y, sum x^2, sum y^2, sum xy,
sum |x - y|): one all-reduce, memory flat in the number of galaxies. A question counts
for a galaxy only where its requested fractions were reached (sum > 0). Per question, r
and MAE pool the (galaxy, answer) pairs of its answers, as Galaxy-Sommelier-style
per-question scores do. With a real store (true votes), the same numbers say how good the
predictor itself is, which bounds what the generated ones can reach.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from galaxy_hpc.data.gz2 import ANSWERS, NUM_ANSWERS, QUESTIONS, column_name
from galaxy_hpc.data.stretch import Stretch, stretch_for_store
from galaxy_hpc.evaluate.config import MorphologyConfig, require
from galaxy_hpc.evaluate.extractors import pick_device
from galaxy_hpc.evaluate.inputs import load_stretch, model_pixels
from galaxy_hpc.data.nonfinite import NonFinitePixels
from galaxy_hpc.evaluate.passes import (
    progress,
    rank_batches,
    read_batches,
    shared_failure,
)
from galaxy_hpc.evaluate.results import EvaluationResult, store_summary
from hpc.comm import Comm, job_comm, on_root
from hpc.dist import resolve_env
from hpc.store import Store, open_store

_SUMS = 7  # n, x, y, xx, yy, xy, |x - y| per answer (x requested, y predicted)


def vote_columns(store: Store, suffix: str) -> list[str]:
    """The store's 37 <GZ2 stem>_<suffix> columns, in Kaggle order; ValueError if any is missing."""
    names = [column_name(answer, suffix) for answer in ANSWERS]
    missing = [name for name in names if name not in store.spec.columns]
    if missing:
        raise ValueError(f"{store.path} lacks {len(missing)} of the 37 vote columns "
                         f"(e.g. {missing[0]}); a conditional catalog stores the fractions it "
                         "asked for as <GZ2 stem>_fraction columns (or give --vote-suffix)")
    return names


def requested_fractions(store: Store, suffix: str, start: int = 0, stop: int | None = None
                        ) -> np.ndarray:
    """(stop - start, 37) requested per-question fractions of items [start, stop) (one whole
    column in memory at a time)."""
    stop = len(store) if stop is None else stop
    return np.stack([store.read_column(name)[start:stop].astype(np.float64)
                     for name in vote_columns(store, suffix)], axis=1)


def _sums(requested: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(37, 7) sums over the galaxies whose question was reached."""
    reached = np.zeros_like(requested, dtype=bool)
    for q in QUESTIONS:
        reached[:, q.columns] = (requested[:, q.columns].sum(axis=1) > 0)[:, None]
    x, y, w = requested, predicted, reached.astype(np.float64)
    return np.stack([w.sum(0), (w * x).sum(0), (w * y).sum(0), (w * x * x).sum(0),
                     (w * y * y).sum(0), (w * x * y).sum(0), (w * np.abs(x - y)).sum(0)], axis=1)


def _scores(sums: np.ndarray) -> dict[str, float]:
    n, sx, sy, sxx, syy, sxy, sad = sums
    if n < 2:
        return {"r": float("nan"), "mae": float("nan"), "n": int(n)}
    var_x, var_y = n * sxx - sx * sx, n * syy - sy * sy
    r = (n * sxy - sx * sy) / np.sqrt(var_x * var_y) if var_x > 0 and var_y > 0 else float("nan")
    return {"r": float(r), "mae": float(sad / n), "n": int(n)}


def _score_table(sums: np.ndarray) -> dict[str, Any]:
    questions = [{"question": q.number, "slug": q.slug, "text": q.text,
                  **_scores(sums[q.columns].sum(axis=0))} for q in QUESTIONS]
    answers = [{"answer": a.kaggle, "column": a.stem, "text": a.text, **_scores(sums[a.index])}
               for a in ANSWERS]
    return {"overall": _scores(sums.sum(axis=0)), "questions": questions, "answers": answers}


class MorphologyResult(EvaluationResult):
    def summary(self) -> str:
        d = self.data
        gen, real = d["generated_scores"], d.get("real_scores")
        lines = [f"morphology: predicted vs requested GZ2 vote fractions of "
                 f"{d['num_generated']:,} generated galaxies (predictor {d['predictor']}); "
                 f"overall r {gen['overall']['r']:.3f}, MAE {gen['overall']['mae']:.3f}"
                 + (f"; on real galaxies r {real['overall']['r']:.3f}, MAE "
                    f"{real['overall']['mae']:.3f}" if real else ""),
                 f"{'question':<22} {'r':>7} {'MAE':>7}" + (f" {'real r':>7} {'real MAE':>8}"
                                                           if real else "")]
        for k, q in enumerate(gen["questions"]):
            row = f"Q{q['question']:<2} {q['slug']:<18} {q['r']:>7.3f} {q['mae']:>7.3f}"
            if real:
                rq = real["questions"][k]
                row += f" {rq['r']:>7.3f} {rq['mae']:>8.3f}"
            lines.append(row)
        return "\n".join(lines)


def predict_fractions(predictor: Any, images: np.ndarray, stretch: Stretch) -> np.ndarray:
    """The 37 vote fractions (N, 37) a VotePredictor reads off store images, float64."""
    pixels = model_pixels(images, stretch, predictor.image_size)
    with torch.no_grad():
        predicted = predictor.predict_fractions(pixels).detach().cpu().double().numpy()
    if predicted.shape != (len(images), NUM_ANSWERS):
        raise ValueError(f"the predictor returned shape {predicted.shape} for "
                         f"{len(images)} images; a VotePredictor returns (N, 37)")
    return predicted


def _predict_sums(store: Store, predictor: Any, stretch: Stretch, cfg: MorphologyConfig,
                  comm: Comm, bar) -> np.ndarray:
    """(37, 7) sums of this rank's share (its whole batches and their requested rows)."""
    sums = np.zeros((NUM_ANSWERS, _SUMS))
    bounds = rank_batches(len(store), cfg.batch_size, comm.rank, comm.size)
    if not bounds:
        return sums
    offset = bounds[0][0]
    requested = requested_fractions(store, cfg.vote_suffix, offset, bounds[-1][1])
    for first, images in read_batches(store, bounds, use="the morphology evaluation"):
        predicted = predict_fractions(predictor, images, stretch)
        sums += _sums(requested[first - offset:first - offset + len(images)], predicted)
        bar.update(len(images))
    return sums


def run_morphology(cfg: MorphologyConfig, *, show_progress: bool = True,
                   comm: Comm | None = None) -> MorphologyResult:
    """Collective: run on every rank; every rank returns the same result."""
    from galaxy_hpc.models.vote_predictor import load_vote_predictor

    start = time.perf_counter()
    env = resolve_env(cuda_available=False)
    require(cfg, "generated", "predictor")
    comm = comm or job_comm(env)
    generated = open_store(cfg.generated)
    real = open_store(cfg.real) if cfg.real else None
    stores = [("generated", generated)] + ([("real", real)] if real is not None else [])
    for _, store in stores:  # fail early, on every rank, naming a store without vote columns
        vote_columns(store, cfg.vote_suffix)
    stretch = load_stretch(cfg.stretch)
    # One stretch for both stores when there is a real one (as training saw real galaxies).
    reference = {name: real if real is not None else store for name, store in stores}
    stretches = on_root(comm, lambda: {name: stretch_for_store(reference[name], stretch)
                                       for name, _ in stores})
    predictor = load_vote_predictor(cfg.predictor, device=pick_device(cfg.device, env.local_rank))
    bar = progress(sum(b - a for _, s in stores
                       for a, b in rank_batches(len(s), cfg.batch_size, comm.rank, comm.size)),
                   f"vote fractions (rank 0 of {comm.size})", show_progress and comm.rank == 0)
    local, failure = [], None
    try:
        for name, store in stores:
            local.append(_predict_sums(store, predictor, stretches[name], cfg, comm, bar))
    except NonFinitePixels as error:
        failure = error
    bar.close()
    shared_failure(comm, failure)
    summed = comm.allreduce_sum(np.stack(local)).reshape(len(stores), NUM_ANSWERS, _SUMS)
    result = {
        "evaluation": "morphology", "predictor": str(cfg.predictor),
        "predictor_image_size": int(predictor.image_size), "vote_suffix": cfg.vote_suffix,
        "num_generated": len(generated), "generated": store_summary(generated),
        "generated_scores": _score_table(summed[0]),
        "num_ranks": comm.size, "seconds": time.perf_counter() - start,
    }
    if real is not None:
        result.update(num_real=len(real), real=store_summary(real),
                      real_scores=_score_table(summed[1]))
    return MorphologyResult(result)
