"""Metric functions against brute-force definitions."""

import itertools

import numpy as np
import pytest

from tracefactory.valuemodel.metrics import auroc, brier, ece, pairwise_accuracy


def brute_auroc(score, outcome):
    pos, neg = score[outcome == 1], score[outcome == 0]
    wins = [(p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg)]
    return float(np.mean(wins))


def test_auroc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(0)
    score = rng.integers(0, 5, size=60) / 4  # many ties
    outcome = (rng.random(60) < 0.4).astype(float)
    assert auroc(score, outcome) == pytest.approx(brute_auroc(score, outcome))


def test_auroc_of_one_class_is_nan():
    assert np.isnan(auroc(np.array([0.1, 0.9]), np.array([1.0, 1.0])))


def test_brier_and_ece_of_perfect_and_constant_predictions():
    outcome = np.array([1, 0, 1, 1, 0, 1, 0, 1.0])
    assert brier(outcome, outcome) == 0
    assert brier(np.full(8, 0.5), outcome) == pytest.approx(0.25)
    assert ece(np.full(8, 5 / 8), outcome, bins=10) == pytest.approx(0)  # rate 5/8, calibrated
    assert ece(np.full(8, 0.9), outcome, bins=10) == pytest.approx(0.9 - 5 / 8)


def test_pairwise_accuracy_pairs_only_within_a_problem_and_ignores_incomplete():
    value = np.array([0.9, 0.2, 0.5, 0.1, 0.8, 0.7, 0.99])
    label = np.array([1, 0, 0, 1, 0, 1, 2])
    problem = np.array(["a", "a", "a", "b", "b", "c", "a"])
    accuracy, pairs = pairwise_accuracy(value, label, problem)
    # a: (0.9 > 0.2), (0.9 > 0.5) right; b: (0.1 < 0.8) wrong; c: no pair; label 2 ignored.
    assert pairs == 3
    assert accuracy == pytest.approx(2 / 3)


def test_pairwise_ties_count_half():
    accuracy, pairs = pairwise_accuracy(
        np.array([0.5, 0.5]), np.array([1, 0]), np.array(["a", "a"])
    )
    assert (accuracy, pairs) == (0.5, 1)
