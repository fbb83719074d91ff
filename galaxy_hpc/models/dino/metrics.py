"""How well predicted vote fractions match the volunteers': numbers and a plot.

Galaxy Sommelier reports Pearson r, R^2 and MAE per feature and overall, and the
accuracy of the main class; so do we, per GZ2 question and overall, on per-question
fractions. Which galaxies count for a question: those where at least `min_reach` of
the volunteers reached it (gz2.question_reach of the true fractions) and someone
answered. A deep question answered by one volunteer of forty is a 0/1 coin, not a
fraction, and would swamp the scores with noise no model can predict.

- per answer: r, R^2, MAE over the galaxies that count for its question;
- per question: r and R^2 over its answers pooled *within* each answer (every answer
  centred on its own mean: sum of the answers' co-variations over the square root of
  the products of their variations; R^2 = 1 - sum of their squared errors / sum of
  their variations about their own means), the MAE over its answers, and accuracy =
  how often the answer with the largest predicted fraction is the volunteers' top one;
- overall: r, R^2 and MAE pooled over every (galaxy, answer) pair counted above (our
  reading of Sommelier's "overall": flatten everything), and beside them `r_centred`
  and `r2_centred`, the same within-answer pooling over all 37 answers, the main-class
  accuracy (question 1: smooth / features / star), and the Kaggle challenge's RMSE on
  cumulative values (all galaxies).

Why both overall readings: flattening mixes answers whose typical fractions differ
(bar ~0.06, no bar ~0.94), so a model that predicts every galaxy's *average* fractions
and tells no two galaxies apart already gets a high pooled r. `constant_baseline` (the
training set's mean fractions; the family writes it beside the model's metrics) shows
how much of a pooled figure is free; the centred figures give that predictor r 0 and
R^2 <= 0. Pooling within answers, rather than averaging per-answer scores, keeps an
answer that barely varies (a rare "dominant bulge") from swamping a mean with an R^2
of -30 from a tiny denominator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.data.gz2 import QUESTIONS, fractions_to_kaggle, question_reach


def scores(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Pearson r, R^2 (1 - SS_res / SS_tot, about the true mean) and MAE of two 1-D arrays;
    r and R^2 are NaN where the truth does not vary (they are undefined there)."""
    t, p = np.asarray(true, np.float64).ravel(), np.asarray(pred, np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"true and predicted differ in size: {t.size} vs {p.size}")
    if t.size == 0:
        return {"r": float("nan"), "r2": float("nan"), "mae": float("nan"), "num": 0}
    dt, dp = t - t.mean(), p - p.mean()
    ss_tot = float(dt @ dt)
    denominator = np.sqrt(ss_tot * float(dp @ dp))
    if not ss_tot > 0:
        r = float("nan")  # undefined: the truth does not vary
    elif float(dp @ dp) <= 1e-20 * max(float(p @ p), 1e-300):
        r = 0.0  # a constant prediction (up to rounding) tells no two galaxies apart
    else:
        r = float(dt @ dp / denominator)
    r2 = 1.0 - float(((t - p) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return {"r": r, "r2": r2, "mae": float(np.abs(t - p).mean()), "num": int(t.size)}


def counted(true: np.ndarray, min_reach: float) -> np.ndarray:
    """(N, 11) bool: which galaxies count for each question (see the module docstring)."""
    reach = question_reach(true)
    answered = np.stack([true[:, q.columns].sum(axis=1) > 0 for q in QUESTIONS], axis=1)
    return (reach >= min_reach) & answered


def question_key(q: Any) -> str:
    return f"q{q.number:02d}_{q.slug}"


def centred_scores(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """r and R^2 of (N, K) answers pooled within each answer (see the module docstring)."""
    return _from_sums(_centred_sums(true, pred))


def _centred_sums(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """[sum dt*dp, sum dt^2, sum dp^2, sum (t - p)^2, sum p^2], d: minus the answer's mean."""
    t, p = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    if t.size == 0:
        return np.zeros(5)
    dt, dp = t - t.mean(axis=0), p - p.mean(axis=0)
    return np.array([(dt * dp).sum(), (dt * dt).sum(), (dp * dp).sum(), ((t - p) ** 2).sum(),
                     (p * p).sum()])


def _from_sums(sums: np.ndarray) -> dict[str, float]:
    tp, tt, pp, residual, p2 = (float(v) for v in sums)
    if not tt > 0:
        return {"r": float("nan"), "r2": float("nan")}
    r = 0.0 if pp <= 1e-20 * max(p2, 1e-300) else tp / np.sqrt(tt * pp)
    return {"r": float(r), "r2": 1.0 - residual / tt}


def vote_metrics(true: np.ndarray, pred: np.ndarray, *, min_reach: float = 0.5
                 ) -> dict[str, Any]:
    true, pred = np.asarray(true, np.float64), np.asarray(pred, np.float64)
    if true.shape != pred.shape or true.ndim != 2 or true.shape[1] != 37:
        raise ValueError(f"need true and predicted fractions (N, 37), got {true.shape} and "
                         f"{pred.shape}")
    rows = counted(true, min_reach)
    questions: dict[str, Any] = {}
    pooled_t, pooled_p, sums = [], [], np.zeros(5)
    for q in QUESTIONS:
        keep = rows[:, q.number - 1]
        t, p = true[keep][:, q.columns], pred[keep][:, q.columns]
        pooled_t.append(t.ravel())
        pooled_p.append(p.ravel())
        question_sums = _centred_sums(t, p)
        sums += question_sums
        questions[question_key(q)] = {
            **_from_sums(question_sums), "mae": scores(t, p)["mae"],
            "accuracy": float((t.argmax(1) == p.argmax(1)).mean()) if len(t) else float("nan"),
            "num_galaxies": int(keep.sum()),
            "answers": {a.stem: scores(t[:, j], p[:, j]) for j, a in enumerate(q.answers)}}
    overall = scores(np.concatenate(pooled_t), np.concatenate(pooled_p))
    within = _from_sums(sums)
    kaggle = fractions_to_kaggle(true) - fractions_to_kaggle(pred)
    overall.update(
        r_centred=within["r"], r2_centred=within["r2"],
        main_class_accuracy=questions[question_key(QUESTIONS[0])]["accuracy"],
        kaggle_rmse=float(np.sqrt((kaggle ** 2).mean())) if len(true) else float("nan"),
        num_galaxies=int(len(true)), min_reach=float(min_reach))
    return {"overall": overall, "questions": questions}


def mean_fractions(true: np.ndarray, min_reach: float = 0.5) -> np.ndarray:
    """(37,) each question's average fractions over the galaxies that count for it
    (uniform where none does): the constant predictor of `constant_baseline`."""
    true = np.asarray(true, np.float64)
    rows = counted(true, min_reach)
    out = np.zeros(true.shape[1])
    for q in QUESTIONS:
        keep = rows[:, q.number - 1]
        width = q.columns.stop - q.columns.start
        out[q.columns] = true[keep][:, q.columns].mean(0) if keep.any() else 1.0 / width
    return out


def summary_line(metrics: dict[str, Any]) -> str:
    o = metrics["overall"]
    return (f"held-out {o['num_galaxies']} galaxies: r {o['r']:.3f}, R^2 {o['r2']:.3f}, "
            f"MAE {o['mae']:.3f} (pooled); centred per answer r {o['r_centred']:.3f}, "
            f"R^2 {o['r2_centred']:.3f}; main-class accuracy "
            f"{o['main_class_accuracy']:.3f}")


def plot_true_vs_predicted(true: np.ndarray, pred: np.ndarray, path: str | Path, *,
                           min_reach: float = 0.5, title: str = "") -> Path:
    """A PNG with one panel per question: predicted against true fraction of each answer
    (a colour per answer) for the galaxies that count, with the question's r and R^2."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = vote_metrics(true, pred, min_reach=min_reach)
    rows = counted(np.asarray(true, np.float64), min_reach)
    fig, axes = plt.subplots(3, 4, figsize=(16, 12), constrained_layout=True)
    for q, ax in zip(QUESTIONS, axes.ravel()):
        keep = rows[:, q.number - 1]
        for j, answer in enumerate(q.answers):
            ax.scatter(true[keep, answer.index], pred[keep, answer.index], s=4, alpha=0.35,
                       label=answer.text, rasterized=True)
        ax.plot([0, 1], [0, 1], color="black", lw=0.8)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="volunteers", ylabel="predicted")
        m = metrics["questions"][question_key(q)]
        ax.set_title(f"Q{q.number} {q.slug}: r {m['r']:.2f}, R$^2$ {m['r2']:.2f} "
                     f"(n={m['num_galaxies']})", fontsize=9)
        ax.legend(fontsize=6, markerscale=2, loc="upper left")
    last = axes.ravel()[-1]
    last.axis("off")
    o = metrics["overall"]
    last.text(0.0, 0.5, f"{title}\npooled: r {o['r']:.3f}, R$^2$ {o['r2']:.3f}, "
              f"MAE {o['mae']:.3f}\ncentred per answer: r {o['r_centred']:.3f}, "
              f"R$^2$ {o['r2_centred']:.3f}\n"
              f"main-class accuracy {o['main_class_accuracy']:.3f}\n"
              f"galaxies {o['num_galaxies']} (min reach {min_reach})", fontsize=12,
              va="center")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
