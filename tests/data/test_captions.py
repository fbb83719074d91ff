"""Captions for every path through the GZ2 tree, thresholds, and the tag helpers."""

from __future__ import annotations

import itertools
import time
from collections import Counter

import numpy as np
import pytest
from support.votes import votes

from galaxy_hpc.data.captions import (
    DEFAULT_PHRASES,
    CaptionConfig,
    Captioner,
    caption_tags,
    shuffle_tags,
    shuffle_tags_by_keys,
)
from galaxy_hpc.data.gz2 import GZ2_TREE, QUESTIONS


def with_question(f: np.ndarray, number: int, values: list[float]) -> np.ndarray:
    f = f.copy()
    f[GZ2_TREE.question(number).columns] = values
    return f


def caption(f: np.ndarray, **config) -> str:
    return Captioner(CaptionConfig(**config)).caption(f)


BULGES = {"a10": "no bulge prominence", "a11": "just noticeable bulge prominence",
          "a12": "obvious bulge prominence", "a13": "dominant bulge prominence"}
WINDINGS = {"a28": "tightly wound spiral arms", "a29": "medium wound spiral arms",
            "a30": "loosely wound spiral arms"}
ARMS = {"a31": "1 spiral arm", "a32": "2 spiral arms", "a33": "3 spiral arms",
        "a34": "4 spiral arms", "a36": "more than 4 spiral arms",
        "a37": "unknown number of spiral arms"}
ODD = {"a19": "ring galaxy", "a20": "lens or arc", "a21": "disturbed galaxy",
       "a22": "irregular galaxy", "a23": "other odd feature", "a24": "merger",
       "a38": "dust lane"}


def test_galaxysd_examples():
    assert caption(votes("a02", "a05", "a07", "a08", "a28", "a32", "a12", "a15")) == \
        "sdss, spiral galaxy, obvious bulge prominence, tightly wound spiral arms, 2 spiral arms"
    assert caption(votes("a01", "a18", "a15")) == "sdss, smooth, cigar shaped galaxy"
    assert caption(votes("a02", "a04", "a25", "a15")) == \
        "sdss, edge-on galaxy, with rounded edge-on bulge"
    assert caption(votes("a01", "a16", "a14", "a38")) == "sdss, elliptical galaxy, dust lane"
    undecided_bulge = with_question(votes("a02", "a05", "a07", "a09", "a14", "a19"), 5,
                                    [0.3, 0.3, 0.2, 0.2])
    assert caption(undecided_bulge) == "sdss, ring galaxy"


@pytest.mark.parametrize("shape, expected", [
    ("a16", "sdss, elliptical galaxy"),
    ("a17", "sdss, smooth, in-between round galaxy"),
    ("a18", "sdss, smooth, cigar shaped galaxy"),
])
def test_smooth_paths(shape, expected):
    assert caption(votes("a01", shape, "a15")) == expected


@pytest.mark.parametrize("bulge, phrase", [("a25", "with rounded edge-on bulge"),
                                           ("a26", "with boxy edge-on bulge"),
                                           ("a27", "with no edge-on bulge")])
def test_edge_on_paths(bulge, phrase):
    assert caption(votes("a02", "a04", bulge, "a15")) == f"sdss, edge-on galaxy, {phrase}"


@pytest.mark.parametrize("bar", ["a06", "a07"])
@pytest.mark.parametrize("bulge", sorted(BULGES))
def test_face_on_no_spiral_paths(bar, bulge):
    barred = "barred galaxy, " if bar == "a06" else ""
    assert caption(votes("a02", "a05", bar, "a09", bulge, "a15")) == \
        f"sdss, {barred}{BULGES[bulge]}"


@pytest.mark.parametrize("bar, bulge, winding, arms",
                         list(itertools.product(["a06", "a07"], sorted(BULGES),
                                                sorted(WINDINGS), sorted(ARMS))))
def test_spiral_paths(bar, bulge, winding, arms):
    barred = "barred galaxy, " if bar == "a06" else ""
    f = votes("a02", "a05", bar, "a08", winding, arms, bulge, "a15")
    assert caption(f) == (f"sdss, {barred}spiral galaxy, {BULGES[bulge]}, "
                          f"{WINDINGS[winding]}, {ARMS[arms]}")


@pytest.mark.parametrize("feature", sorted(ODD))
def test_odd_feature_paths(feature):
    assert caption(votes("a01", "a16", "a14", feature)) == \
        f"sdss, elliptical galaxy, {ODD[feature]}"
    assert caption(votes("a02", "a04", "a27", "a14", feature)) == \
        f"sdss, edge-on galaxy, with no edge-on bulge, {ODD[feature]}"
    # Nothing odd: the odd feature is not captioned, however its (stray) votes look.
    assert caption(votes("a01", "a16", "a15", feature)) == "sdss, elliptical galaxy"


def test_star_or_artifact_ends_the_tree():
    assert caption(votes("a03")) == "sdss, star or artifact"
    assert caption(votes("a03", "a16", "a14", "a19", strength=0.9)) == "sdss, star or artifact"


def test_every_default_phrase_is_reached_by_some_path():
    assert set(DEFAULT_PHRASES) == {a.code for q in QUESTIONS for a in q.answers}


def test_threshold_decides_whether_an_answer_counts():
    f = with_question(votes("a02", "a05", "a07", "a08", "a28", "a32", "a15"), 5,
                      [0.2, 0.2, 0.45, 0.15])
    spiral = "sdss, spiral galaxy, tightly wound spiral arms, 2 spiral arms"
    assert caption(f) == spiral
    assert caption(f, threshold=0.4) == \
        "sdss, spiral galaxy, obvious bulge prominence, tightly wound spiral arms, 2 spiral arms"
    # An undecided spiral question still captions the bulge: both of its routes reach Q5.
    g = votes("a02", "a05", "a07", "a08", "a28", "a32", "a12", "a15")
    assert caption(g, threshold=0.85) == "sdss"  # Q1 undecided ends the caption
    g[[0, 1]] = 0.05, 0.95
    g[[3, 4]] = 0.05, 0.95
    g[[5, 6]] = 0.05, 0.95
    g[[13, 14]] = 0.05, 0.95
    g = with_question(g, 5, [0.0, 0.05, 0.95, 0.0])
    assert caption(g, threshold=0.85) == "sdss, obvious bulge prominence"


def test_odd_threshold_and_odd_question():
    f = with_question(votes("a01", "a16", "a14"), 8, [0.45, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05])
    assert caption(f) == "sdss, elliptical galaxy"
    assert caption(f, odd_threshold=0.4) == "sdss, elliptical galaxy, ring galaxy"
    # A minority "anything odd? yes" counts once it reaches odd_threshold.
    g = with_question(votes("a01", "a16", "a19", strength=0.9), 6, [0.3, 0.7])
    assert caption(g) == "sdss, elliptical galaxy"
    assert caption(g, threshold=0.25) == "sdss, elliptical galaxy"
    assert caption(g, odd_threshold=0.3) == "sdss, elliptical galaxy, ring galaxy"
    # ... and a majority "yes" below a stricter odd_threshold does not.
    h = with_question(g, 6, [0.6, 0.4])
    assert caption(h) == "sdss, elliptical galaxy, ring galaxy"
    assert caption(h, odd_threshold=0.7) == "sdss, elliptical galaxy"


def test_ties_go_to_the_first_answer_in_kaggle_order():
    f = with_question(votes("a02", "a04", "a25", "a15"), 2, [0.5, 0.5])
    assert caption(f) == "sdss, edge-on galaxy, with rounded edge-on bulge"


def test_unreached_and_empty_votes():
    assert caption(np.zeros(37)) == "sdss"
    assert caption(np.zeros(37), threshold=0.0) == "sdss"


def test_phrases_merges_and_survey_are_configurable():
    f = votes("a01", "a16", "a15")
    assert caption(f, merges={}) == "sdss, smooth, completely round galaxy"
    assert caption(f, survey="hsc") == "hsc, elliptical galaxy"
    assert caption(votes("a01", "a17", "a15"), merges={("a01", "a17"): "E3 galaxy"}) == \
        "sdss, E3 galaxy"
    g = votes("a02", "a05", "a06", "a08", "a28", "a32", "a12", "a15")
    assert caption(g, phrases={"Class4.1": "spiral", "t03_bar_a06_bar": ""}) == \
        "sdss, spiral, obvious bulge prominence, tightly wound spiral arms, 2 spiral arms"
    assert caption(votes("a02", "a05", "a07", "a09", "a10", "a15"), phrases={"a05": "face-on"}) \
        == "sdss, face-on, no bulge prominence"


@pytest.mark.parametrize("config, match", [
    ({"threshold": 1.5}, "threshold"),
    ({"odd_threshold": -0.1}, "odd_threshold"),
    ({"survey": ""}, "survey"),
    ({"survey": "sdss, dr7"}, "comma"),
    ({"phrases": {"a35": "nothing"}}, "a35"),
    ({"phrases": {"a08": "spiral, arms"}}, "comma"),
    ({"merges": {("a16", "a17"): "x"}}, "question 7"),
])
def test_bad_config_raises(config, match):
    with pytest.raises(ValueError, match=match):
        CaptionConfig(**config)


def test_batch_matches_single_and_is_deterministic():
    rng = np.random.default_rng(0)
    f = np.zeros((200, 37))
    for q in QUESTIONS:
        f[:, q.columns] = rng.dirichlet(np.full(len(q.answers), 0.3), size=len(f))
    captioner = Captioner()
    batch = captioner.captions(f)
    assert batch == [captioner.caption(row) for row in f]
    assert batch == Captioner().captions(f.copy())
    assert captioner.winners(f).shape == (200, 11)
    assert captioner.captions(np.zeros((0, 37))) == []
    with pytest.raises(ValueError, match=r"\(N, 37\)"):
        captioner.captions(np.zeros((3, 36)))


def test_300k_galaxies_caption_in_seconds():
    rng = np.random.default_rng(1)
    f = np.zeros((300_000, 37))
    for q in QUESTIONS:
        f[:, q.columns] = rng.dirichlet(np.full(len(q.answers), 0.3), size=len(f))
    start = time.perf_counter()
    captions = Captioner().captions(f)
    assert len(captions) == 300_000
    assert time.perf_counter() - start < 30  # ~1 s on one core; catches a per-row loop


def test_caption_tags_and_shuffle():
    text = "sdss, spiral galaxy, obvious bulge prominence, tightly wound spiral arms, 2 spiral arms"
    tags = caption_tags(text)
    assert tags == ["sdss", "spiral galaxy", "obvious bulge prominence",
                    "tightly wound spiral arms", "2 spiral arms"]
    assert caption_tags(" sdss ,ring galaxy,, ") == ["sdss", "ring galaxy"]
    shuffled = {shuffle_tags(text, np.random.default_rng(seed)) for seed in range(30)}
    assert len(shuffled) > 5
    for s in shuffled:
        assert caption_tags(s)[0] == "sdss" and sorted(caption_tags(s)) == sorted(tags)
    assert shuffle_tags(text, np.random.default_rng(7)) == \
        shuffle_tags(text, np.random.default_rng(7))
    assert shuffle_tags("sdss", np.random.default_rng(0)) == "sdss"
    assert len({shuffle_tags(text, np.random.default_rng(s), keep_first=0).split(", ")[0]
                for s in range(30)}) > 1
    with pytest.raises(ValueError, match="keep_first"):
        shuffle_tags(text, np.random.default_rng(0), keep_first=-1)


def test_shuffle_tags_by_keys_orders_each_caption_by_its_keys():
    captions = ["sdss, a, b, c", " sdss ,ring galaxy,, ", "sdss", "sdss, x, y"]
    keys = np.array([[0.9, 0.1, 0.5], [0.3, 0.2, 0.1], [0.5, 0.5, 0.5], [0.7, 0.2, 0.0]])
    assert shuffle_tags_by_keys(captions, keys) == [
        "sdss, b, c, a", "sdss, ring galaxy", "sdss", "sdss, y, x"]
    # keys beyond a caption's own tags are not looked at; keep_first=0 moves the prefix too
    assert shuffle_tags_by_keys(["p, q"], [[0.8, 0.2, 0.0]], keep_first=0) == ["q, p"]
    assert shuffle_tags_by_keys(["p, q, r"], [[0.0]], keep_first=2) == ["p, q, r"]
    assert shuffle_tags_by_keys([], np.empty((0, 0))) == []
    with pytest.raises(ValueError, match=r"keys of shape \(1, >= 3\)"):
        shuffle_tags_by_keys(["sdss, a, b, c"], [[0.1, 0.2]])
    with pytest.raises(ValueError, match="keep_first"):
        shuffle_tags_by_keys(["sdss, a"], [[0.5]], keep_first=-1)


def test_shuffle_tags_by_keys_gives_every_order_equally_often_from_uniform_keys():
    text = "sdss, a, b, c"
    keys = np.random.default_rng(0).random((6000, 3))
    counts = Counter(shuffle_tags_by_keys([text] * len(keys), keys))
    assert len(counts) == 6 and all(caption.startswith("sdss, ") for caption in counts)
    assert all(abs(n - 1000) < 4 * np.sqrt(1000) for n in counts.values()), counts
