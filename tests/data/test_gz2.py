"""The GZ2 tree as data, column names, and the conversions between vote encodings."""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_hpc.data import gz2
from galaxy_hpc.data.gz2 import ANSWERS, GZ2_TREE, QUESTIONS


def random_valid_fractions(rng: np.random.Generator, n: int, p_zero: float = 0.3) -> np.ndarray:
    """Per-question fractions that obey the tree: some answers exactly 0, and every
    question nobody reached set to 0 (the module's convention)."""
    f = np.zeros((n, 37))
    for q in QUESTIONS:
        k = len(q.answers)
        block = rng.dirichlet(np.ones(k), size=n)
        zero = rng.random((n, k)) < p_zero
        zero[np.arange(n), rng.integers(k, size=n)] = False
        block[zero] = 0
        f[:, q.columns] = block / block.sum(axis=1, keepdims=True)
    reach = gz2.question_reach(f)
    for q in QUESTIONS:
        f[reach[:, q.number - 1] == 0, q.columns] = 0
    return f


def kaggle_sum(values: np.ndarray, question: int) -> np.ndarray:
    return values[:, GZ2_TREE.question(question).columns].sum(axis=1)


def col(values: np.ndarray, kaggle: str) -> np.ndarray:
    return values[:, GZ2_TREE.answer(kaggle).index]


def test_tree_has_11_questions_and_37_answers_in_kaggle_order():
    assert len(QUESTIONS) == 11 and len(ANSWERS) == 37
    assert [a.index for a in ANSWERS] == list(range(37))
    assert [a.kaggle for a in ANSWERS[:4]] == ["Class1.1", "Class1.2", "Class1.3", "Class2.1"]
    assert ANSWERS[-1].kaggle == "Class11.6"
    assert [len(q.answers) for q in QUESTIONS] == [3, 2, 2, 2, 4, 2, 3, 7, 3, 3, 6]
    assert ANSWERS[0].stem == "t01_smooth_or_features_a01_smooth"
    assert GZ2_TREE.answer("Class8.7").stem == "t08_odd_feature_a38_dust_lane"
    assert GZ2_TREE.answer("Class11.5").stem == "t11_arms_number_a36_more_than_4"
    assert "a35" not in {a.code for a in ANSWERS}
    for q in QUESTIONS:
        assert all(a.question == q.number for a in q.answers)
        assert q.text and q.slug


def test_tree_is_frozen():
    with pytest.raises(AttributeError):
        ANSWERS[0].leads_to = 2  # type: ignore[misc]


def test_paths_through_the_tree():
    def codes(number):
        return {a.code for a in GZ2_TREE.question(number).parents}

    assert codes(1) == set()
    assert codes(7) == {"a01"} and codes(2) == {"a02"}
    assert codes(9) == {"a04"} and codes(3) == {"a05"}
    assert codes(4) == {"a06", "a07"}
    assert codes(10) == {"a08"} and codes(11) == {"a28", "a29", "a30"}
    # Q5: two routes, spiral (at the end of Q10 -> Q11) and no spiral.
    assert codes(5) == {"a09", "a31", "a32", "a33", "a34", "a36", "a37"}
    # Q6: every path that is not star/artifact ends there.
    assert codes(6) == {"a10", "a11", "a12", "a13", "a16", "a17", "a18", "a25", "a26", "a27"}
    assert codes(8) == {"a14"}
    assert GZ2_TREE.answer("a03").leads_to is None and GZ2_TREE.answer("a15").leads_to is None
    order = [q.number for q in GZ2_TREE.order]
    for q in QUESTIONS:
        assert all(order.index(p.question) < order.index(q.number) for p in q.parents)
    resume = {q.number: q.resume for q in QUESTIONS}
    assert resume == {1: None, 2: 6, 3: 4, 4: 5, 5: 6, 6: None, 7: 6, 8: None, 9: 6,
                      10: 11, 11: 5}


@pytest.mark.parametrize("name", ["t07_rounded_a16_completely_round", "Class7.1", "7.1",
                                  "a16", "CLASS7.1", "T07_ROUNDED_A16_COMPLETELY_ROUND"])
def test_answer_lookup(name):
    assert GZ2_TREE.answer(name).index == 15


def test_unknown_answer_and_question_raise():
    with pytest.raises(ValueError, match="a35"):
        GZ2_TREE.answer("a35")
    with pytest.raises(ValueError, match="12"):
        GZ2_TREE.question(12)


def test_column_names_round_trip_every_suffix():
    assert gz2.column_name("a01") == "t01_smooth_or_features_a01_smooth_fraction"
    for answer in ANSWERS:
        for suffix in gz2.SUFFIXES:
            assert gz2.parse_column(gz2.column_name(answer, suffix)) == (answer, suffix)
        assert gz2.parse_column(answer.kaggle) == (answer, None)
    assert gz2.parse_column("T01_SMOOTH_OR_FEATURES_A01_SMOOTH_WEIGHTED_FRACTION") == \
        (ANSWERS[0], "weighted_fraction")


@pytest.mark.parametrize("bad", ["dr7objid", "t01_smooth_or_features_count",
                                 "t01_smooth_or_features_a01_smooth_votes", "Class12.1",
                                 "Class1.4"])
def test_parse_column_rejects_non_answer_columns(bad):
    with pytest.raises(ValueError):
        gz2.parse_column(bad)


def test_column_name_rejects_unknown_suffix():
    with pytest.raises(ValueError, match="debiased"):
        gz2.column_name("a01", "debias")


def test_kaggle_sums_follow_the_tree():
    f = random_valid_fractions(np.random.default_rng(1), 500)
    k = gz2.fractions_to_kaggle(f)
    assert np.allclose(kaggle_sum(k, 1), 1)
    assert np.allclose(kaggle_sum(k, 2), col(k, "1.2"))
    for q in (3, 4, 5):
        assert np.allclose(kaggle_sum(k, q), col(k, "2.2"))
    assert np.allclose(kaggle_sum(k, 5), col(k, "4.1") + col(k, "4.2"))
    assert np.allclose(kaggle_sum(k, 7), col(k, "1.1"))
    assert np.allclose(kaggle_sum(k, 8), col(k, "6.1"))
    assert np.allclose(kaggle_sum(k, 9), col(k, "2.1"))
    assert np.allclose(kaggle_sum(k, 10), col(k, "4.1"))
    assert np.allclose(kaggle_sum(k, 11), col(k, "4.1"))
    # Kaggle's Q6 sums to 1 even where star/artifact is above 0; the tree's reach does not.
    reached = col(k, "1.3") < 1
    assert np.any(reached & (col(k, "1.3") > 0))
    assert np.allclose(kaggle_sum(k, 6)[reached], 1)
    reach = gz2.question_reach(f)
    assert np.allclose(reach[:, 5], 1 - col(k, "1.3"))


def test_known_kaggle_vector():
    f = np.zeros(37)
    f[[0, 1]] = 0.4, 0.6  # smooth 0.4, features 0.6
    f[[3, 4]] = 0.5, 0.5  # edge-on yes/no
    f[[5, 6]] = 0.2, 0.8  # bar
    f[[7, 8]] = 0.75, 0.25  # spiral
    f[[9, 10, 11, 12]] = 0, 0.5, 0.5, 0  # bulge
    f[[13, 14]] = 0.1, 0.9  # odd
    f[[15, 16, 17]] = 1, 0, 0  # round
    f[18] = 1  # ring
    f[[25, 26, 27]] = 0, 0, 1  # edge-on, no bulge
    f[[28, 29, 30]] = 1, 0, 0  # tight
    f[32] = 1  # 2 arms
    k = gz2.fractions_to_kaggle(f)
    assert k[0] == 0.4 and k[15] == 0.4  # Q7 weight is smooth
    assert np.allclose(k[[3, 4]], [0.3, 0.3])
    assert np.allclose(k[[7, 8]], [0.225, 0.075])
    assert np.allclose(k[[10, 11]], [0.15, 0.15])  # weight 0.225 + 0.075 = 0.3
    assert np.allclose(k[[28, 32]], [0.225, 0.225])
    assert np.allclose(k[[13, 14, 18]], [0.1, 0.9, 0.1])
    assert np.allclose(gz2.kaggle_to_fractions(k), f)


def test_round_trip_fractions_to_kaggle_and_back():
    f = random_valid_fractions(np.random.default_rng(2), 2000)
    assert np.allclose(gz2.kaggle_to_fractions(gz2.fractions_to_kaggle(f)), f, atol=1e-12)


def test_round_trip_kaggle_to_fractions_and_back():
    k = gz2.fractions_to_kaggle(random_valid_fractions(np.random.default_rng(3), 2000))
    assert np.allclose(gz2.fractions_to_kaggle(gz2.kaggle_to_fractions(k)), k, atol=1e-12)


def test_unreached_questions_are_zero_not_nan():
    k = np.zeros((1, 37))
    k[0, 2] = 1.0  # star or artifact: nothing below is reached
    f = gz2.kaggle_to_fractions(k)
    assert not np.isnan(f).any() and f.sum() == 1.0
    gz2.check_fractions(f)
    assert np.array_equal(gz2.fractions_to_kaggle(f), k)


def test_vote_counts_to_fractions():
    counts = np.zeros((2, 37))
    counts[0, :3] = 30, 10, 0
    counts[0, 15:18] = 15, 15, 0
    f = gz2.vote_counts_to_fractions(counts)
    assert np.allclose(f[0, :3], [0.75, 0.25, 0]) and np.allclose(f[0, 15:18], [0.5, 0.5, 0])
    assert f[0, 3:15].sum() == 0 and f[1].sum() == 0
    assert gz2.vote_counts_to_fractions(counts[0]).shape == (37,)
    with pytest.raises(ValueError, match="non-negative"):
        gz2.vote_counts_to_fractions(-counts)
    with pytest.raises(ValueError, match=r"\(N, 37\)"):
        gz2.vote_counts_to_fractions(np.ones((2, 36)))


def test_check_fractions_names_the_bad_question():
    f = random_valid_fractions(np.random.default_rng(4), 10, p_zero=0)
    gz2.check_fractions(f)
    f[7, 9:13] *= 0.8  # bulge prominence of row 7
    with pytest.raises(ValueError, match=r"question 5 \(bulge_prominence\).*row 7"):
        gz2.check_fractions(f)
    gz2.check_fractions(f, atol=0.3)
    with pytest.raises(ValueError, match="within"):
        gz2.check_fractions(np.full(37, np.nan))
    with pytest.raises(ValueError, match="question 2 .*kaggle_to_fractions"):
        gz2.check_fractions(gz2.fractions_to_kaggle(f))
