"""GZ2 vote fractions -> GalaxySD-style captions, and the tag helpers training uses.

A caption is the survey prefix followed by one phrase per answer that wins along the
decision tree, comma-separated: `sdss, spiral galaxy, obvious bulge prominence,
tightly wound spiral arms, 2 spiral arms`.

Rules (the defaults of `CaptionConfig`):

1. Walk the tree from Q1. At each question the winner is the answer with the largest
   fraction (ties go to the first in Kaggle order); it *counts* when its fraction is at
   least `threshold` and above 0. A counted answer adds its phrase and the walk
   follows it. Odd features are the exception, since a feature that a minority of
   volunteers flagged is still there: "anything odd? yes" (Q6) counts when it is at
   least `odd_threshold`, whatever the majority says, and the odd feature itself (Q8,
   votes spread over 7 answers) needs `odd_threshold` instead of `threshold`.
2. A question with no counted answer adds nothing, and the walk resumes where all of
   its answers meet again (`Question.resume`): an undecided Q4 (spiral?) still
   captions the bulge (Q5), an undecided Q2 goes on to Q6; an undecided Q1 or Q6 ends
   the caption, since one of their answers ends the tree.
3. Yes/no answers that only open the next question add no phrase: features or disk,
   not edge-on, no bar, no spiral, anything odd (yes or no). The questions below say
   what the galaxy is, which is how GalaxySD's captions read (`sdss, ring galaxy`).
4. Phrases come out in `CAPTION_ORDER`: what the galaxy is first, then its parts, odd
   features last. GalaxySD puts the bulge (Q5) before the arms (Q10, Q11), so this is
   not the walk order; nor is it question-number order, which would put the odd
   feature (Q8) before an edge-on bulge (Q9).
5. Merges: "smooth" (a01) with "completely round" (a16) becomes the single phrase
   "elliptical galaxy"; smooth and in-between or cigar-shaped keep both phrases
   (`sdss, smooth, cigar shaped galaxy`). A merged phrase takes its first member's place.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from galaxy_hpc.data.gz2 import ANSWERS, GZ2_TREE, NUM_ANSWERS, NUM_QUESTIONS

# Phrase per answer code; "" adds nothing to the caption (rule 3).
DEFAULT_PHRASES: Mapping[str, str] = MappingProxyType({
    "a01": "smooth", "a02": "", "a03": "star or artifact",
    "a04": "edge-on galaxy", "a05": "",
    "a06": "barred galaxy", "a07": "",
    "a08": "spiral galaxy", "a09": "",
    "a10": "no bulge prominence", "a11": "just noticeable bulge prominence",
    "a12": "obvious bulge prominence", "a13": "dominant bulge prominence",
    "a14": "", "a15": "",
    "a16": "completely round galaxy", "a17": "in-between round galaxy",
    "a18": "cigar shaped galaxy",
    "a19": "ring galaxy", "a20": "lens or arc", "a21": "disturbed galaxy",
    "a22": "irregular galaxy", "a23": "other odd feature", "a24": "merger",
    "a38": "dust lane",
    "a25": "with rounded edge-on bulge", "a26": "with boxy edge-on bulge",
    "a27": "with no edge-on bulge",
    "a28": "tightly wound spiral arms", "a29": "medium wound spiral arms",
    "a30": "loosely wound spiral arms",
    "a31": "1 spiral arm", "a32": "2 spiral arms", "a33": "3 spiral arms",
    "a34": "4 spiral arms", "a36": "more than 4 spiral arms",
    "a37": "unknown number of spiral arms",
})
DEFAULT_MERGES: Mapping[tuple[str, str], str] = MappingProxyType(
    {("a01", "a16"): "elliptical galaxy"})
ANYTHING_ODD, ODD_FEATURE = 6, 8
CAPTION_ORDER = (1, 7, 2, 9, 3, 4, 5, 10, 11, 6, 8)  # question numbers, rule 4
_RANK = {a.index: CAPTION_ORDER.index(a.question) for a in ANSWERS}


def _check_phrase(phrase: str, where: str) -> None:
    if "," in phrase or phrase != phrase.strip():
        raise ValueError(f"{where}: phrase {phrase!r} must have no comma and no outer spaces "
                         f"(commas separate the tags of a caption)")


@dataclass(frozen=True)
class CaptionConfig:
    """How votes become captions. `phrases` and `merges` override the defaults per answer
    (keys: GZ2 stem, Kaggle name or code); map an answer to "" to drop its phrase."""

    survey: str = "sdss"
    threshold: float = 0.5
    odd_threshold: float = 0.5
    phrases: Mapping[str, str] = field(default_factory=dict)
    merges: Mapping[tuple[str, str], str] = field(default_factory=lambda: dict(DEFAULT_MERGES))

    def __post_init__(self) -> None:
        for name in ("threshold", "odd_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"caption {name} must be a vote fraction in [0, 1], got {value}")
        if not self.survey.strip():
            raise ValueError("caption survey prefix must not be empty (e.g. 'sdss')")
        _check_phrase(self.survey, "survey prefix")
        for key, phrase in self.phrases.items():
            GZ2_TREE.answer(key)
            _check_phrase(phrase, f"phrase for {key}")
        for (first, second), phrase in self.merges.items():
            a, b = GZ2_TREE.answer(first), GZ2_TREE.answer(second)
            if a.question == b.question:
                raise ValueError(f"merge {first}+{second}: both answer question {a.question}, "
                                 f"so they can never win together")
            _check_phrase(phrase, f"merge {first}+{second}")

    def phrase_table(self) -> tuple[str, ...]:
        """The phrase of each of the 37 answers, Kaggle order, overrides applied."""
        table = [DEFAULT_PHRASES[a.code] for a in ANSWERS]
        for key, phrase in self.phrases.items():
            table[GZ2_TREE.answer(key).index] = phrase
        return tuple(table)


class Captioner:
    """Captions galaxies from (N, 37) per-question fractions (Kaggle order); deterministic.

    The walk is vectorised over galaxies, and captions are built once per distinct set of
    winners, so 300,000 galaxies take about a second.
    """

    def __init__(self, config: CaptionConfig | None = None) -> None:
        self.config = config or CaptionConfig()
        self._phrases = self.config.phrase_table()
        self._merges = [(GZ2_TREE.answer(a).index, GZ2_TREE.answer(b).index, phrase)
                        for (a, b), phrase in self.config.merges.items()]

    def winners(self, fractions: np.ndarray) -> np.ndarray:
        """(N, 11) index (0..36) of the counted answer of each question; -1 where none."""
        f = np.asarray(fractions, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != NUM_ANSWERS:
            raise ValueError(f"fractions must have shape (N, {NUM_ANSWERS}), got {f.shape}")
        rows = np.arange(len(f))
        chosen = np.full((len(f), NUM_QUESTIONS), -1, dtype=np.int8)
        reached = np.zeros((len(f), NUM_QUESTIONS + 1), dtype=bool)  # by question number
        reached[:, 1] = True
        for q in GZ2_TREE.order:
            block = f[:, q.columns]
            best = block.argmax(axis=1)
            top = block[rows, best]
            need = self.config.odd_threshold if q.number == ODD_FEATURE else self.config.threshold
            counts = reached[:, q.number] & (top >= need) & (top > 0)
            if q.number == ANYTHING_ODD:  # rule 1: odd_threshold alone decides "yes"
                yes = block[:, 0]
                odd = reached[:, q.number] & (yes >= self.config.odd_threshold) & (yes > 0)
                counts = odd | (counts & (best == 1))
                best = np.where(odd, 0, best)
            chosen[counts, q.number - 1] = q.answers[0].index + best[counts]
            for k, answer in enumerate(q.answers):
                if answer.leads_to is not None:
                    reached[:, answer.leads_to] |= counts & (best == k)
            if q.resume is not None:
                reached[:, q.resume] |= reached[:, q.number] & ~counts
        return chosen

    def _caption_of(self, winners: np.ndarray) -> str:
        phrases = {i: self._phrases[i] for i in winners.tolist() if i >= 0}
        for a, b, merged in self._merges:
            if a in phrases and b in phrases:
                first, second = sorted((a, b), key=_RANK.__getitem__)
                phrases[first], phrases[second] = merged, ""
        ordered = [phrases[i] for i in sorted(phrases, key=_RANK.__getitem__)]
        return ", ".join([self.config.survey] + [p for p in ordered if p])

    def captions(self, fractions: np.ndarray) -> list[str]:
        """One caption per row of (N, 37) per-question fractions."""
        chosen = self.winners(fractions)
        # The caption depends only on the set of winners: one bit per answer (37 < 63).
        keys = np.where(chosen >= 0, np.left_shift(1, chosen.clip(0), dtype=np.int64), 0).sum(1)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        distinct = np.array([self._caption_of(chosen[i]) for i in first], dtype=object)
        return distinct[inverse.reshape(-1)].tolist()

    def caption(self, fractions: np.ndarray) -> str:
        """The caption of one galaxy's 37 per-question fractions."""
        return self.captions(np.asarray(fractions, dtype=np.float64).reshape(1, -1))[0]


def caption_tags(caption: str) -> list[str]:
    """The tags of a caption, in order: `"sdss, ring galaxy"` -> `["sdss", "ring galaxy"]`."""
    return [tag.strip() for tag in caption.split(",") if tag.strip()]


@functools.lru_cache(maxsize=4096)
def _cached_tags(caption: str) -> tuple[str, ...]:
    """caption_tags, remembered: a training set repeats few distinct captions (one per set
    of winning answers), and splitting each one anew cost ~5 us per item of a batch."""
    return tuple(caption_tags(caption))


def shuffle_tags(caption: str, rng: np.random.Generator, *, keep_first: int = 1) -> str:
    """The caption with its tags shuffled by `rng`, the first `keep_first` (the survey
    prefix) kept in place: GalaxySD shuffles tags so that the model does not learn
    their order, but the prefix names the survey and always leads."""
    if keep_first < 0:
        raise ValueError(f"keep_first must be >= 0, got {keep_first}")
    tags = caption_tags(caption)
    head, tail = tags[:keep_first], tags[keep_first:]
    return ", ".join(head + [tail[i] for i in rng.permutation(len(tail))])


def shuffle_tags_by_keys(captions: Sequence[str], keys: np.ndarray, *,
                         keep_first: int = 1) -> list[str]:
    """shuffle_tags for many captions, from keys instead of a generator: caption i's tags
    after the first `keep_first` are put in the order of keys[i, :their count] (argsort),
    a uniformly random order when the keys are independent uniforms. keys: (N, W), W at
    least the largest such count; StoreDataset draws them per item (counter-based)."""
    if keep_first < 0:
        raise ValueError(f"keep_first must be >= 0, got {keep_first}")
    tags = [_cached_tags(caption) for caption in captions]
    counts = np.array([max(len(t) - keep_first, 0) for t in tags], dtype=np.int64)
    width = int(counts.max(initial=0))
    keys = np.asarray(keys, dtype=np.float64)
    if keys.ndim != 2 or keys.shape[0] != len(tags) or keys.shape[1] < width:
        raise ValueError(f"need keys of shape ({len(tags)}, >= {width}) for these captions, "
                         f"got {keys.shape}")
    # Keys beyond a caption's own tags sort last, so each row's first `count` entries are a
    # permutation of its tags; "stable" makes even (improbable) ties deterministic.
    masked = np.where(np.arange(width) < counts[:, None], keys[:, :width], np.inf)
    orders = np.argsort(masked, axis=1, kind="stable").tolist()
    return [", ".join([*t[:keep_first], *[t[keep_first + j] for j in order[:count]]])
            for t, order, count in zip(tags, orders, counts.tolist())]
