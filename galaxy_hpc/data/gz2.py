"""The Galaxy Zoo 2 decision tree as data, and conversions between its vote encodings.

Three encodings of the same 37 answers (always in Kaggle order, Class1.1 ... Class11.6)
travel through the project:

- vote counts (GZ2 catalog `_count` columns);
- per-question fractions (GZ2 `_fraction` / `_debiased`): each question sums to 1
  among the volunteers who answered it;
- Kaggle cumulative values: each answer is the fraction of *all* volunteers who gave
  it, so a question sums to the value of the route(s) that lead to it.

Convention for questions nobody reached (zero votes, or a weight of zero): their
per-question fractions are 0, never NaN. NaN would poison every loss and mean that
downstream code needs masks everywhere; a question whose fractions sum to 0 is
unambiguous ("not reached") and `check_fractions` accepts it.

Kaggle quirk: Q6 ("anything odd?") sums to 1 in Kaggle's values even where
Class1.3 (star or artifact) is above 0, although the tree sends star/artifact to the
end. Kaggle (and the winning solution's output layer) treat Q6 as asked of everyone,
so `fractions_to_kaggle` weights Q6 by 1, while `question_reach` follows the tree
(Q6 reached by 1 - Class1.3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

SUFFIXES = ("count", "weight", "fraction", "weighted_fraction", "debiased", "flag")
NUM_ANSWERS = 37
NUM_QUESTIONS = 11
KAGGLE_ROOTED = frozenset({1, 6})  # questions Kaggle weights by 1 (see module docstring)
DEFAULT_ATOL = 0.01  # catalog fractions are rounded to 3 decimals; 7 answers -> < 0.004

# (number, slug, text, ((answer part, text, next question or None), ...)), Kaggle order.
_TREE_DATA = (
    (1, "smooth_or_features", "Is the galaxy simply smooth and rounded, with no sign of a disk?",
     (("a01_smooth", "smooth", 7), ("a02_features_or_disk", "features or disk", 2),
      ("a03_star_or_artifact", "star or artifact", None))),
    (2, "edgeon", "Could this be a disk viewed edge-on?",
     (("a04_yes", "yes", 9), ("a05_no", "no", 3))),
    (3, "bar", "Is there a sign of a bar feature through the centre of the galaxy?",
     (("a06_bar", "bar", 4), ("a07_no_bar", "no bar", 4))),
    (4, "spiral", "Is there any sign of a spiral arm pattern?",
     (("a08_spiral", "spiral", 10), ("a09_no_spiral", "no spiral", 5))),
    (5, "bulge_prominence",
     "How prominent is the central bulge, compared with the rest of the galaxy?",
     (("a10_no_bulge", "no bulge", 6), ("a11_just_noticeable", "just noticeable", 6),
      ("a12_obvious", "obvious", 6), ("a13_dominant", "dominant", 6))),
    (6, "odd", "Is there anything odd?",
     (("a14_yes", "yes", 8), ("a15_no", "no", None))),
    (7, "rounded", "How rounded is it?",
     (("a16_completely_round", "completely round", 6), ("a17_in_between", "in between", 6),
      ("a18_cigar_shaped", "cigar shaped", 6))),
    (8, "odd_feature", "Is the odd feature a ring, or is the galaxy disturbed or irregular?",
     (("a19_ring", "ring", None), ("a20_lens_or_arc", "lens or arc", None),
      ("a21_disturbed", "disturbed", None), ("a22_irregular", "irregular", None),
      ("a23_other", "other", None), ("a24_merger", "merger", None),
      ("a38_dust_lane", "dust lane", None))),
    (9, "bulge_shape", "Does the galaxy have a bulge at its centre? If so, what shape?",
     (("a25_rounded", "rounded", 6), ("a26_boxy", "boxy", 6), ("a27_no_bulge", "no bulge", 6))),
    (10, "arms_winding", "How tightly wound do the spiral arms appear?",
     (("a28_tight", "tight", 11), ("a29_medium", "medium", 11), ("a30_loose", "loose", 11))),
    (11, "arms_number", "How many spiral arms are there?",
     (("a31_1", "1", 5), ("a32_2", "2", 5), ("a33_3", "3", 5), ("a34_4", "4", 5),
      ("a36_more_than_4", "more than 4", 5), ("a37_cant_tell", "can't tell", 5))),
)


@dataclass(frozen=True)
class Answer:
    index: int  # column in the (N, 37) arrays, Kaggle order
    code: str  # GZ2 answer code, e.g. a01 (there is no a35; dust lane is a38)
    stem: str  # GZ2 column stem, e.g. t01_smooth_or_features_a01_smooth
    kaggle: str  # e.g. Class1.1
    question: int  # number of the question it answers
    text: str
    leads_to: int | None  # the question asked next; None ends the tree


@dataclass(frozen=True)
class Question:
    number: int
    slug: str
    text: str
    answers: tuple[Answer, ...]
    parents: tuple[Answer, ...]  # answers whose `leads_to` is this question
    # Where all answers meet again (None if one ends the tree): the captioner goes on
    # from here when no answer wins. Q4 (spiral?) resumes at Q5, Q2 at Q6, Q1/Q6 nowhere.
    resume: int | None

    @property
    def columns(self) -> slice:
        """This question's columns in the (N, 37) arrays."""
        return slice(self.answers[0].index, self.answers[-1].index + 1)


@dataclass(frozen=True)
class DecisionTree:
    questions: tuple[Question, ...]  # by number
    answers: tuple[Answer, ...]  # Kaggle order
    order: tuple[Question, ...]  # every question after all of its parents' questions
    names: Mapping[str, Answer] = field(repr=False)  # lower-cased stem, Kaggle name, code

    def question(self, number: int) -> Question:
        if not 1 <= number <= len(self.questions):
            raise ValueError(f"GZ2 has questions 1..{len(self.questions)}, not {number}")
        return self.questions[number - 1]

    def answer(self, name: str | Answer) -> Answer:
        """Look an answer up by GZ2 stem, Kaggle name (`Class7.1` or `7.1`) or code (`a16`)."""
        if isinstance(name, Answer):
            return name
        found = self.names.get(name.strip().lower())
        if found is None:
            raise ValueError(
                f"unknown GZ2 answer {name!r}: use a GZ2 stem such as "
                f"'t01_smooth_or_features_a01_smooth', a Kaggle name such as 'Class1.1', "
                f"or a code such as 'a01'")
        return found


def _build() -> DecisionTree:
    answers: list[Answer] = []
    for number, slug, _, parts in _TREE_DATA:
        for k, (part, text, nxt) in enumerate(parts, start=1):
            answers.append(Answer(len(answers), part[:3], f"t{number:02d}_{slug}_{part}",
                                  f"Class{number}.{k}", number, text, nxt))
    nexts = {n: [a.leads_to for a in answers if a.question == n] for n, *_ in _TREE_DATA}
    parents = {n: tuple(a for a in answers if a.leads_to == n) for n in nexts}
    order: list[int] = []  # topological sort; the tree is tiny
    while len(order) < len(nexts):
        order += [n for n in nexts if n not in order
                  and all(p.question in order for p in parents[n])]

    def descendants(number: int) -> set[int]:
        below = {number}
        for n in nexts[number]:
            below |= descendants(n) if n else set()
        return below

    def meeting_point(number: int) -> int | None:
        if None in nexts[number]:
            return None
        common = set.intersection(*(descendants(n) for n in nexts[number]))
        return next(n for n in order if n in common)

    questions = tuple(
        Question(n, slug, text, tuple(a for a in answers if a.question == n), parents[n],
                 meeting_point(n))
        for n, slug, text, _ in _TREE_DATA)
    names = {key.lower(): a for a in answers
             for key in (a.stem, a.kaggle, a.kaggle[len("Class"):], a.code)}
    return DecisionTree(questions, tuple(answers), tuple(questions[n - 1] for n in order),
                        MappingProxyType(names))


GZ2_TREE = _build()
ANSWERS = GZ2_TREE.answers
QUESTIONS = GZ2_TREE.questions

# ---------------------------------------------------------------- column names

_KAGGLE_COLUMN = re.compile(r"^class\d+\.\d+$")


def column_name(answer: str | Answer, suffix: str = "fraction") -> str:
    """GZ2 catalog column of `answer`, e.g. `t01_smooth_or_features_a01_smooth_fraction`."""
    if suffix not in SUFFIXES:
        raise ValueError(f"unknown GZ2 column suffix {suffix!r}: use one of {', '.join(SUFFIXES)}")
    return f"{GZ2_TREE.answer(answer).stem}_{suffix}"


def parse_column(name: str) -> tuple[Answer, str | None]:
    """(answer, suffix) of a GZ2 catalog column, or (answer, None) for a Kaggle `ClassX.Y`.

    Case-insensitive, since FITS writers often upper-case column names.
    """
    lowered = name.strip().lower()
    if _KAGGLE_COLUMN.match(lowered):
        return GZ2_TREE.answer(lowered), None
    for suffix in SUFFIXES:
        stem = lowered[: -len(suffix) - 1]
        answer = GZ2_TREE.names.get(stem)
        if lowered.endswith("_" + suffix) and answer is not None and answer.stem == stem:
            return answer, suffix
    raise ValueError(
        f"{name!r} is not a GZ2 answer column: expected '<stem>_<suffix>' with a suffix in "
        f"({', '.join(SUFFIXES)}), e.g. 't01_smooth_or_features_a01_smooth_fraction', "
        f"or a Kaggle name such as 'Class1.1'")


# ---------------------------------------------------------------- conversions


def _as_votes(values: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim not in (1, 2) or array.shape[-1] != NUM_ANSWERS:
        raise ValueError(f"{what} must have shape (N, {NUM_ANSWERS}) or ({NUM_ANSWERS},) "
                         f"in Kaggle order, got {array.shape}")
    return array


def normalise_per_question(values: np.ndarray) -> np.ndarray:
    """Divide each question's values by their sum; questions summing to 0 stay 0."""
    array = _as_votes(values, "values")
    out = np.zeros_like(array)
    for q in QUESTIONS:
        block = array[..., q.columns]
        total = block.sum(axis=-1, keepdims=True)
        np.divide(block, total, out=out[..., q.columns], where=total > 0)
    return out


def vote_counts_to_fractions(counts: np.ndarray) -> np.ndarray:
    """Per-question fractions from (N, 37) vote counts (or weights); no votes -> 0."""
    array = _as_votes(counts, "vote counts")
    if np.any(array < 0) or not np.all(np.isfinite(array)):
        raise ValueError("vote counts must be finite and non-negative")
    return normalise_per_question(array)


def kaggle_to_fractions(cumulative: np.ndarray) -> np.ndarray:
    """Per-question fractions from Kaggle cumulative values.

    Each question is renormalised by its own sum rather than divided by the weight of
    its route: Kaggle's values are rounded to 6 decimals, and their own sums are the
    best estimate of that weight.
    """
    return normalise_per_question(cumulative)


def _cumulative(fractions: np.ndarray, kaggle: bool) -> tuple[np.ndarray, np.ndarray]:
    f = _as_votes(fractions, "fractions")
    cum = np.zeros_like(f)
    reach = np.zeros(f.shape[:-1] + (NUM_QUESTIONS,))
    for q in GZ2_TREE.order:
        if not q.parents or (kaggle and q.number in KAGGLE_ROOTED):
            weight = np.ones(f.shape[:-1])
        else:  # several parents (Q5: a09 and the end of the spiral route; Q6) add up
            weight = cum[..., [p.index for p in q.parents]].sum(axis=-1)
        reach[..., q.number - 1] = weight
        cum[..., q.columns] = f[..., q.columns] * weight[..., None]
    return cum, reach


def fractions_to_kaggle(fractions: np.ndarray) -> np.ndarray:
    """Kaggle cumulative values: each question scaled by the fraction of volunteers reaching it.

    Q5 is reached by the spiral route (through Q10 and Q11) and by a09 (no spiral), so
    its weight is Class4.1 + Class4.2; Q6 is weighted by 1, as Kaggle does.
    """
    return _cumulative(fractions, kaggle=True)[0]


def question_reach(fractions: np.ndarray) -> np.ndarray:
    """(N, 11) fraction of volunteers who reached each question, following the tree.

    Unlike Kaggle, Q6 is reached by 1 - Class1.3 (star/artifact ends the tree).
    """
    return _cumulative(fractions, kaggle=False)[1]


def check_fractions(fractions: np.ndarray, *, atol: float = DEFAULT_ATOL) -> None:
    """Raise ValueError naming the first question whose fractions do not sum to 1 (or 0).

    A sum of 0 is accepted: it means nobody answered that question.
    """
    f = _as_votes(fractions, "fractions").reshape(-1, NUM_ANSWERS)
    bad_rows = np.flatnonzero(~np.all(np.isfinite(f) & (f >= -atol) & (f <= 1 + atol), axis=1))
    if bad_rows.size:
        raise ValueError(f"fractions of row {bad_rows[0]} are not all finite and within [0, 1]: "
                         f"pass per-question fractions, not counts or Kaggle values")
    for q in QUESTIONS:
        total = f[:, q.columns].sum(axis=1)
        bad = np.flatnonzero((np.abs(total - 1) > atol) & (np.abs(total) > atol))
        if bad.size:
            raise ValueError(
                f"question {q.number} ({q.slug}): fractions of row {bad[0]} sum to "
                f"{total[bad[0]]:.4f}; each question must sum to 1, or 0 where nobody "
                f"answered it (tolerance {atol}); Kaggle values need kaggle_to_fractions first")
