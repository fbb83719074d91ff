"""`evaluate morphology-fidelity`: do the galaxies of a morphology-conditioned model show the
vote fractions they were asked for, as well as a predictor can tell?

A vote predictor (any galaxy_hpc.models.vote_predictor.VotePredictor: the DINOv2
regressor) reads GZ2 vote fractions off each generated galaxy. Per question, the mean
absolute error between those and the requested fractions (the catalog's <GZ2 stem>_fraction
columns) measures fidelity, but only up to the predictor's own error: a predictor that
misreads real galaxies by 0.05 misreads generated ones too. So the same MAE is computed on
real galaxies against their true fractions (the floor), on the galaxies the predictor's
training held out when the real store is its training store (predictor.json's heldout
rule), and each question is judged against both targets: MAE <= `max_mae` and MAE <=
`max_floor_ratio` x floor.

Both sides are counted as the predictor's held-out metrics count them: fractions
renormalised per question (Hart16's debiased fractions do not sum to 1; the predictor's
do), a question counting for a galaxy where at least `min_reach` of the volunteers reached
it and someone answered it, MAE pooled over that question's (galaxy, answer) pairs.
Every counted galaxy has all of a question's answers, so that is the mean over galaxies
of each galaxy's mean error on the question, and the sum of squares of those per-galaxy
means gives its standard error (`mae_error`): a miss of 0.004 with an error of 0.003
reads differently from one of 0.03. Beside the MAE, per answer and per bin of the
requested fraction, the count, sum and sum of squares of the predicted fraction give the
requested-vs-predicted plot.

Generated images are read as the survey would show them (`match_noise`): the real store
is read first, and each generated float (linear flux) image is given the pixel noise it
lacks against the real store's median per band before the predictor sees it, so that a
perfect generator of noise-free galaxies reads at the floor, measured on noisy real
galaxies (galaxy_hpc.data.pixel_noise). As drawn it reads below it: a DINOv2 regressor
reads the synthetic galaxies drawn without noise at 0.87-1.01x its floor. uint8
composites are read as drawn (`pixel_noise.matchable`: their noise went through a stretch,
and Gaussian noise added after it is not the survey's), and the report says so. Both noise
levels, and what was added, are reported.

Ranks take contiguous runs of whole batches of the global batch grid (passes.py: the same
batches for any rank count). The sums are integers, fractions in units of 2^-32 (a
rounding of at most 1.2e-10 a value, far below float32 predictions' 6e-8): integer sums
do not depend on their order, so one all-reduce gives bit-identical results on 1 or 64
ranks, with memory flat in the number of galaxies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.data.gz2 import ANSWERS, NUM_ANSWERS, QUESTIONS, column_name
from galaxy_hpc.data.gz2 import normalise_per_question
from galaxy_hpc.data.nonfinite import NonFinitePixels
from galaxy_hpc.data.pixel_noise import (NOT_MATCHABLE, add_matching_noise, matchable,
                                         noise_line, noise_report, pixel_noise, survey_noise)
from galaxy_hpc.data.stretch import Stretch, stretch_for_store
from galaxy_hpc.evaluate.config import MorphologyFidelityConfig, require
from galaxy_hpc.evaluate.extractors import pick_device
from galaxy_hpc.evaluate.inputs import load_stretch, model_pixels
from galaxy_hpc.evaluate.morphology import predict_fractions, vote_columns
from galaxy_hpc.evaluate.passes import (progress, rank_batches, read_at, read_batches,
                                        shared_failure)
from galaxy_hpc.evaluate.results import EvaluationResult, store_summary
from galaxy_hpc.models.dino.metrics import counted
from hpc.comm import Comm, job_comm, on_root
from hpc.dist import resolve_env
from hpc.files import read_json
from hpc.store import Store, open_store

UNIT = 2.0 ** 32  # fixed-point unit of the sums: integer sums are exact in any order
BINNED = 3  # batch_sums' first binned column: before it pairs, sum |error|, sum of squares
# The question (0..10) of each of the 37 answers.
_ANSWER_QUESTION = np.zeros(NUM_ANSWERS, dtype=np.int64)
for _number, _question in enumerate(QUESTIONS):
    _ANSWER_QUESTION[_question.columns] = _number
# (37, 11): answer -> its question's mean (1 / the question's answer count).
_QUESTION_MEAN = np.zeros((NUM_ANSWERS, len(QUESTIONS)))
_QUESTION_MEAN[np.arange(NUM_ANSWERS), _ANSWER_QUESTION] = 1.0
_QUESTION_MEAN /= _QUESTION_MEAN.sum(axis=0, keepdims=True)


def _fixed(values: np.ndarray) -> np.ndarray:
    return np.rint(values * UNIT).astype(np.int64)


def fractions(store: Store, suffix: str, rows: slice | np.ndarray) -> np.ndarray:
    """(n, 37) fractions of the given rows, renormalised per question; NaN (not reached) 0."""
    raw = np.stack([store.read_column(name)[rows].astype(np.float64)
                    for name in vote_columns(store, suffix)], axis=1)
    return normalise_per_question(np.clip(np.nan_to_num(raw, nan=0.0), 0.0, None))


def batch_sums(requested: np.ndarray, predicted: np.ndarray, *, min_reach: float,
               num_bins: int) -> np.ndarray:
    """(37, BINNED + 3 num_bins) int64: per answer the counted pairs, sum |requested -
    predicted|, the sum over its counted galaxies of the square of the galaxy's mean
    |error| on the answer's question (the same in every answer of a question), then per
    requested-fraction bin the count, sum and sum of squares of the predicted fraction
    (fractions in units of 2^-32)."""
    use = counted(requested, min_reach)[:, _ANSWER_QUESTION]  # (n, 37)
    out = np.zeros((NUM_ANSWERS, BINNED + 3 * num_bins), dtype=np.int64)
    error = np.abs(requested - predicted)
    per_galaxy = (error @ _QUESTION_MEAN)[:, _ANSWER_QUESTION]  # (n, 37)
    out[:, 0] = use.sum(axis=0)
    out[:, 1] = np.where(use, _fixed(error), 0).sum(axis=0)
    out[:, 2] = np.where(use, _fixed(per_galaxy * per_galaxy), 0).sum(axis=0)
    bins = np.clip((requested * num_bins).astype(np.int64), 0, num_bins - 1)
    slot = (np.arange(NUM_ANSWERS)[None, :] * num_bins + bins)[use]
    size = NUM_ANSWERS * num_bins
    y = predicted[use]
    for k, weights in enumerate((None, _fixed(y), _fixed(y * y))):
        # float64 bincount of integer weights is exact below 2^53 (a batch: ~2^32 x n)
        summed = np.bincount(slot, weights=weights, minlength=size)
        out[:, BINNED + k * num_bins:BINNED + (k + 1) * num_bins] = \
            np.rint(summed).astype(np.int64).reshape(NUM_ANSWERS, num_bins)
    return out


def floor_galaxies(cfg: MorphologyFidelityConfig, real: Store) -> tuple[np.ndarray | None, str,
                                                                        list[str]]:
    """(indices of the real galaxies that give the floor or None for all, a description,
    notes), per cfg.floor_galaxies and the predictor folder's predictor.json."""
    from galaxy_hpc.data.split import heldout_mask
    from galaxy_hpc.models.vote_predictor import MANIFEST

    manifest = read_json(Path(cfg.predictor) / MANIFEST, "the predictor's manifest")
    rule = manifest.get("heldout") or {}
    ours = rule.get("store_checksum") == real.checksum and {"fraction", "seed"} <= set(rule)
    trained = (manifest.get("trained_on") or {}).get("checksum") == real.checksum
    if cfg.floor_galaxies == "all" or (cfg.floor_galaxies == "auto" and not ours):
        notes = ([f"the predictor was trained on {real.path}: a floor from all of its galaxies "
                  "is optimistic (floor_galaxies: heldout uses those it never saw)"]
                 if trained else [])
        return None, f"all {len(real):,} galaxies of the real store", notes
    if not ours:
        raise ValueError(f"floor_galaxies heldout: {Path(cfg.predictor) / MANIFEST} records no "
                         f"held-out rule for {real.path} (checksum {real.checksum}); give its "
                         "training store as real, or floor_galaxies: all")
    indices = np.flatnonzero(heldout_mask(len(real), fraction=rule["fraction"],
                                          seed=rule["seed"]))
    if indices.size == 0:
        raise ValueError(f"floor_galaxies heldout: the predictor held out none of the "
                         f"{len(real)} galaxies of {real.path}")
    return indices, (f"the {indices.size:,} galaxies of the real store the predictor's "
                     f"training held out (fraction {rule['fraction']:g}, seed {rule['seed']})"), []


@dataclass
class Pass:
    """One store's pass on this rank: its sums, and per image read (in this rank's order)
    its own pixel noise and the noise added before reading (empty when none was)."""

    sums: np.ndarray
    noise: list[np.ndarray] = field(default_factory=list)
    added: list[np.ndarray] = field(default_factory=list)


def _store_sums(store: Store, indices: np.ndarray | None, predictor: Any, stretch: Stretch,
                cfg: MorphologyFidelityConfig, comm: Comm, bar,
                match: np.ndarray | None = None) -> Pass:
    """This rank's sums over its whole batches of the store (or of `indices` of it); with
    `match` (C,), each image is first given the pixel noise it lacks against it."""
    if match is not None and indices is not None:
        raise ValueError("noise is matched on whole stores only (the generated one)")
    out = Pass(np.zeros((NUM_ANSWERS, BINNED + 3 * cfg.num_bins), dtype=np.int64))
    bounds = rank_batches(len(store) if indices is None else len(indices), cfg.batch_size,
                          comm.rank, comm.size)
    if not bounds:
        return out
    lo, hi = bounds[0][0], bounds[-1][1]
    use = "the morphology fidelity evaluation"
    if indices is None:
        truth = fractions(store, cfg.vote_suffix, slice(lo, hi))
        batches = ((first - lo, images) for first, images in read_batches(store, bounds,
                                                                         use=use))
    else:
        truth = fractions(store, cfg.vote_suffix, indices[lo:hi])
        batches = ((int(np.searchsorted(indices[lo:hi], rows[0])), images) for rows, images
                   in read_at(store, indices[lo:hi], cfg.batch_size, use=use))
    for offset, images in batches:
        own = pixel_noise(images)
        out.noise.append(own)
        if match is not None:  # image i of the store: the same noise on any rank count
            first = lo + offset  # matched stores are read whole (indices None)
            images, added = add_matching_noise(images, match, seed=cfg.seed,
                                               first_index=first, own=own)
            out.added.append(added)
        predicted = predict_fractions(predictor, images, stretch)
        out.sums += batch_sums(truth[offset:offset + len(images)], predicted,
                               min_reach=cfg.min_reach, num_bins=cfg.num_bins)
        bar.update(len(images))
    return out


def _gathered(parts: list[np.ndarray], comm: Comm, bands: int) -> np.ndarray:
    """(N, bands) every rank's per-image rows, in rank order."""
    rows = [part for rank_parts in comm.allgather(parts) for part in rank_parts]
    return np.concatenate(rows) if rows else np.empty((0, bands))


def _calibration(sums: np.ndarray, num_bins: int) -> list[dict[str, Any]]:
    """Per answer and requested-fraction bin: count, mean and std of the predicted fraction."""
    out = []
    for a in ANSWERS:
        count, total, squares = (
            sums[a.index, BINNED + k * num_bins:BINNED + (k + 1) * num_bins].astype(np.float64)
            for k in range(3))
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(count > 0, total / UNIT / count, np.nan)
            std = np.sqrt(np.clip(np.where(count > 0, squares / UNIT / count, np.nan)
                                  - mean * mean, 0.0, None))
        out.append({"question": QUESTIONS[_ANSWER_QUESTION[a.index]].number,
                    "answer": a.kaggle, "column": a.stem, "text": a.text,
                    "count": count.astype(int).tolist(),
                    "mean_predicted": mean.tolist(), "std_predicted": std.tolist()})
    return out


def pooled_mae(sums: np.ndarray, columns: Any) -> tuple[float | None, int]:
    """(MAE pooled over the (galaxy, answer) pairs of `columns`, the pair count) from
    `batch_sums` sums; None where no pair counted."""
    pairs = int(sums[columns, 0].sum())
    return (float(sums[columns, 1].sum() / UNIT / pairs) if pairs else None), pairs


def mae_error(sums: np.ndarray, question: Any) -> float | None:
    """The standard error of one question's pooled MAE (`pooled_mae` of its columns) from
    `batch_sums` sums: the spread of the per-galaxy mean errors over sqrt(galaxies), the
    galaxies taken as independent; None below two galaxies."""
    columns = range(NUM_ANSWERS)[question.columns]
    mae, pairs = pooled_mae(sums, question.columns)
    galaxies = pairs // len(columns)
    if mae is None or galaxies < 2:
        return None
    mean_square = float(sums[question.columns, 2].sum()) / len(columns) / UNIT / galaxies
    spread = mean_square - mae * mae
    if spread < 8 / UNIT:  # the fixed point's rounding: every galaxy misses by as much
        spread = 0.0
    return float(np.sqrt(spread / (galaxies - 1)))


def _sigmas(excess: float, error: float | None) -> str:
    """" (k sigma)" for a miss by `excess` with standard error `error`."""
    return f" ({excess / error:.1f} sigma)" if error else ""


def judge(mae: float | None, floor: float | None, num_generated: int, num_real: int,
          cfg: MorphologyFidelityConfig, *, mae_se: float | None = None,
          floor_se: float | None = None) -> dict[str, Any]:
    """One question's ratio to the floor (with its standard error, from those of the MAE
    and the floor), status (pass, fail, sparse, no_floor) and verdict. A miss says by how
    many standard errors it misses: the status is the target's, the sigmas say whether
    another sample of galaxies could read the other side of the line."""
    ratio = mae / floor if mae is not None and floor else None
    ratio_se = (ratio * float(np.hypot(mae_se / mae, floor_se / floor))
                if ratio and mae_se is not None and floor_se is not None else None)
    errors = {"mae_se": mae_se, "floor_se": floor_se, "ratio_se": ratio_se}
    if mae is None or num_generated < cfg.min_galaxies:
        return {"ratio": ratio, **errors, "status": "sparse",
                "verdict": f"too few galaxies ({num_generated} < {cfg.min_galaxies})"}
    if floor is None or num_real < cfg.min_galaxies:
        return {"ratio": ratio, **errors, "status": "no_floor",
                "verdict": f"no floor (real galaxies {num_real} < {cfg.min_galaxies})"}
    # A predictor that misreads real galaxies by more than max_mae cannot tell whether a
    # generator meets it: even the real images fail. Still a fail (the target is what it
    # is), with the reason, so the remedy (a better predictor) is not sought in the model.
    unmeasurable = (f" (the predictor's own floor {floor:.3f} is above it: judging this "
                    "question needs a better predictor)" if floor > cfg.max_mae else "")
    failed = ([f"MAE {mae:.3f} > {cfg.max_mae:g}{_sigmas(mae - cfg.max_mae, mae_se)}"
               f"{unmeasurable}"] if mae > cfg.max_mae else []) + (
        [f"{ratio:.2f}x the floor > {cfg.max_floor_ratio:g}x"
         f"{_sigmas(ratio - cfg.max_floor_ratio, ratio_se)}" if ratio is not None
         else "floor 0"] if mae > cfg.max_floor_ratio * floor else [])
    return {"ratio": ratio, **errors, "status": "fail" if failed else "pass",
            "verdict": "fail: " + ", ".join(failed) if failed else "pass"}


def score(generated: np.ndarray, real: np.ndarray, cfg: MorphologyFidelityConfig
          ) -> dict[str, Any]:
    """Per-question MAE, floor, ratio and verdict, the overall numbers and verdict."""
    questions = []
    for q in QUESTIONS:
        (mae, pairs), (floor, real_pairs) = (pooled_mae(generated, q.columns),
                                             pooled_mae(real, q.columns))
        width = len(range(NUM_ANSWERS)[q.columns])  # answers of this question
        n_gen, n_real = pairs // width, real_pairs // width
        questions.append({"question": q.number, "slug": q.slug, "text": q.text, "mae": mae,
                          "floor": floor, "num_generated": n_gen, "num_real": n_real,
                          **judge(mae, floor, n_gen, n_real, cfg,
                                  mae_se=mae_error(generated, q), floor_se=mae_error(real, q))})
    everything = np.arange(NUM_ANSWERS)
    (mae, _), (floor, _) = pooled_mae(generated, everything), pooled_mae(real, everything)
    judged = [q for q in questions if q["status"] in ("pass", "fail")]
    failed = [f"Q{q['question']}" for q in judged if q["status"] == "fail"]
    passed = bool(judged) and not failed
    verdict = ("not judged: no question had enough galaxies" if not judged else
               f"pass: {len(judged)} of {len(questions)} questions judged, all within MAE "
               f"{cfg.max_mae:g} and {cfg.max_floor_ratio:g}x the floor" if passed else
               f"fail: {', '.join(failed)} ({len(failed)} of {len(judged)} judged questions)")
    return {"overall": {"mae": mae, "floor": floor,
                        "ratio": mae / floor if mae is not None and floor else None},
            "questions": questions, "passed": passed, "verdict": verdict}


class MorphologyFidelityResult(EvaluationResult):
    def summary(self) -> str:
        d = self.data
        o = d["overall"]
        lines = [f"morphology fidelity: predicted vs requested GZ2 vote fractions of "
                 f"{d['num_generated']:,} generated galaxies (predictor {d['predictor']}); "
                 f"floor: its MAE on {d['floor_galaxies']['description']}",
                 f"overall MAE {_f(o['mae'])}, floor {_f(o['floor'])}, ratio {_f(o['ratio'])}",
                 f"{'question':<22} {'MAE':>6} {'+-':>5} {'floor':>6} {'+-':>5} {'ratio':>6}  "
                 "verdict"]
        lines += [f"Q{q['question']:<2} {q['slug']:<18} {_f(q['mae']):>6} "
                  f"{_f(q.get('mae_se')):>5} {_f(q['floor']):>6} {_f(q.get('floor_se')):>5} "
                  f"{_f(q['ratio'], 2):>6}  {q['verdict']}" for q in d["questions"]]
        noise = [noise_line(d["pixel_noise"])] if d.get("pixel_noise") else []
        return "\n".join(lines + noise + d["notes"] + [d["verdict"]])


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run_morphology_fidelity(cfg: MorphologyFidelityConfig, *, show_progress: bool = True,
                            comm: Comm | None = None) -> MorphologyFidelityResult:
    """Collective: run on every rank; every rank returns the same result."""
    from galaxy_hpc.models.vote_predictor import load_vote_predictor

    start = time.perf_counter()
    env = resolve_env(cuda_available=False)
    require(cfg, "generated", "predictor", "real")
    comm = comm or job_comm(env)
    generated, real = open_store(cfg.generated), open_store(cfg.real)
    for store in (generated, real):  # fail early, on every rank, naming the store
        vote_columns(store, cfg.vote_suffix)
    predictor = load_vote_predictor(cfg.predictor, device=pick_device(cfg.device, env.local_rank))
    indices, described, notes = floor_galaxies(cfg, real)
    if cfg.match_noise:  # the real store's noise is added to generated images as it is
        ours, theirs = generated.spec, real.spec
        if (ours.image_shape[0] != theirs.image_shape[0]
                or np.dtype(ours.image_dtype).kind != np.dtype(theirs.image_dtype).kind):
            raise ValueError(f"match_noise: {generated.path} holds {ours.image_shape[0]}-band "
                             f"{ours.image_dtype} images, {real.path} {theirs.image_shape[0]}-"
                             f"band {theirs.image_dtype}: their pixel noise is not in the same "
                             "units (match_noise: false reads them as drawn)")
    why_not = NOT_MATCHABLE if cfg.match_noise and not matchable(real.spec.image_dtype) else None
    given = load_stretch(cfg.stretch)
    if given is None:
        given = getattr(predictor, "stretch", None)
    # One map for both stores, the one the predictor was trained with when it says.
    stretch = on_root(comm, lambda: stretch_for_store(real, given))
    passes = [(real, indices), (generated, None)]
    bar = progress(sum(b - a for s, i in passes for a, b in rank_batches(
        len(s) if i is None else len(i), cfg.batch_size, comm.rank, comm.size)),
        f"vote fractions (rank 0 of {comm.size})", show_progress and comm.rank == 0)

    def read(store: Store, rows: np.ndarray | None, match: np.ndarray | None = None) -> Pass:
        found, failure = None, None
        try:
            found = _store_sums(store, rows, predictor, stretch, cfg, comm, bar, match)
        except NonFinitePixels as error:
            failure = error
        shared_failure(comm, failure)  # every rank raises, none waits at the gather
        return found

    try:
        # The real store first: the generated images are given its noise.
        real_pass = read(real, indices)
        bands = real.spec.image_shape[0]
        real_noise = _gathered(real_pass.noise, comm, bands)
        target = (survey_noise(real_noise) if cfg.match_noise and not why_not
                  and len(real_noise) else None)
        generated_pass = read(generated, None, target)
    finally:
        bar.close()
    generated_noise = _gathered(generated_pass.noise, comm, bands)
    added = _gathered(generated_pass.added, comm, bands) if target is not None else None
    summed = comm.allreduce_sum(np.stack([generated_pass.sums, real_pass.sums])
                                ).reshape(2, NUM_ANSWERS, -1)
    pixel_noise_report = (noise_report(real_noise, generated_noise, added, why_not)
                          if len(real_noise) and len(generated_noise) else None)
    return MorphologyFidelityResult({
        "evaluation": "morphology_fidelity", "predictor": str(cfg.predictor),
        "predictor_image_size": int(predictor.image_size), "vote_suffix": cfg.vote_suffix,
        "targets": {"max_mae": cfg.max_mae, "max_floor_ratio": cfg.max_floor_ratio},
        "min_reach": cfg.min_reach, "min_galaxies": cfg.min_galaxies,
        "floor_galaxies": {"mode": cfg.floor_galaxies, "description": described,
                           "num": len(real) if indices is None else int(indices.size)},
        "num_generated": len(generated), "generated": store_summary(generated),
        "num_real": len(real), "real": store_summary(real),
        **score(summed[0], summed[1], cfg),
        "calibration": {"bin_edges": np.linspace(0.0, 1.0, cfg.num_bins + 1).tolist(),
                        "generated": _calibration(summed[0], cfg.num_bins),
                        "real": _calibration(summed[1], cfg.num_bins)},
        "pixel_noise": pixel_noise_report,
        "notes": notes, "num_ranks": comm.size, "seconds": time.perf_counter() - start})
