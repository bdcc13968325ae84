"""Votes, confidence intervals and FLOPs: pure functions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracefactory.search import stats
from tracefactory.search.compute import ModelShape
from tracefactory.search.interfaces import Trace
from tracefactory.search.voting import (
    best_of_n,
    majority_vote,
    pass_at_1,
    vote,
    weighted_majority_vote,
)


def traces(correct: list[bool], values: list[float]) -> list[Trace]:
    return [Trace((1,), v, False, correct=c) for c, v in zip(correct, values, strict=True)]


def test_majority_vote_picks_largest_group():
    ts = traces([True, True, False], [0.1, 0.1, 0.9])
    assert majority_vote(ts, [0, 0, 1]) == 1.0


def test_weighted_vote_can_overturn_majority():
    ts = traces([True, True, False], [0.1, 0.1, 0.9])
    assert weighted_majority_vote(ts, [0, 0, 1]) == 0.0


def test_ties_score_expected_accuracy():
    ts = traces([True, False, False, True], [0.5] * 4)
    assert majority_vote(ts, [0, 1, 2, 3]) == pytest.approx(0.5)
    assert best_of_n(ts) == pytest.approx(0.5)


def test_unanswered_traces_do_not_vote():
    ts = traces([False, False, True], [1.0, 1.0, 0.2])
    assert vote(ts, [None, None, 0], [1.0] * 3) == 1.0
    assert majority_vote(ts[:2], [None, None]) == 0.0


def test_nan_weight_is_rejected():
    with pytest.raises(ValueError, match="weight"):
        weighted_majority_vote(traces([True], [float("nan")]), [0])


def test_pass_at_1_is_mean_correctness():
    assert pass_at_1(traces([True, False, False, False], [0] * 4)) == 0.25


def test_paired_ci_removes_shared_difficulty():
    rng = np.random.default_rng(0)
    difficulty = rng.uniform(0, 1, 200)
    a, b = difficulty + 0.05, difficulty
    assert stats.paired_ci(a, b).ci_low == pytest.approx(0.05)
    unpaired = stats.bootstrap_ci(a)
    assert unpaired.ci_high - unpaired.ci_low > 0.05


def test_within_problem_ci_uses_bernoulli_variance_for_single_trials():
    interval = stats.within_problem_ci([[1.0], [0.0], [0.5], [0.5]])
    half = stats.Z_95 * math.sqrt(0.25 + 0.25) / 4
    assert interval.mean == 0.5 and interval.ci_high == pytest.approx(0.5 + half)


def test_within_problem_ci_uses_trial_spread_when_repeated():
    interval = stats.within_problem_ci([[1.0, 1.0], [0.0, 0.0]])
    assert interval.ci_low == interval.ci_high == 0.5


def test_bootstrap_ci_brackets_mean():
    interval = stats.bootstrap_ci([0, 1] * 50, resamples=500)
    assert interval.ci_low < 0.5 < interval.ci_high


def test_forward_flops_are_params_plus_attention():
    shape = ModelShape(non_embedding_params=10, num_layers=2, attention_width=4)
    # tokens at positions 3 and 4 attend over 4 and 5 positions
    assert shape.forward_flops(3, 2) == 2 * 10 * 2 + 2 * 2 * 4 * (4 + 5)
    assert shape.forward_flops(0, 5) == shape.forward_flops(0, 3) + shape.forward_flops(3, 2)
