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
    pass_at_n,
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


def test_unanswered_traces_vote_as_singleton_classes():
    # The official vote: [None, None, right] is three classes of one vote each, a three-way tie.
    ts = traces([False, False, True], [1.0, 1.0, 0.2])
    assert vote(ts, [None, None, 0], [1.0] * 3) == pytest.approx(1 / 3)
    assert weighted_majority_vote(ts, [None, None, 0]) == 0.0  # a heavier unanswered trace wins
    assert majority_vote(ts[:2], [None, None]) == 0.0
    # Two unanswered traces never pool into one class: the answered pair still wins.
    ts = traces([False, False, True, True], [1.0] * 4)
    assert majority_vote(ts, [None, None, 0, 0]) == 1.0


def test_vote_ties_within_the_official_absolute_tolerance():
    ts = traces([True, False], [0.5, 0.5 + 5e-6])
    assert weighted_majority_vote(ts, [0, 1]) == pytest.approx(0.5)
    ts = traces([True, False], [0.5, 0.5 + 5e-5])
    assert weighted_majority_vote(ts, [0, 1]) == 0.0


def test_pass_at_n_is_any_correct():
    assert pass_at_n(traces([False, True, False], [0] * 3)) == 1.0
    assert pass_at_n(traces([False, False], [0] * 2)) == 0.0


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


def official_margin(y: np.ndarray) -> float:
    """The paper's ``estimate_mean_and_error`` (include_var_X=False), written out on (N, M)."""
    n, m = y.shape
    if m == 1:
        return 1.96 * (np.var(y, ddof=1) / n) ** 0.5
    return 1.96 * math.sqrt(np.var(y, axis=1, ddof=1).mean() / (n * m))


def test_within_problem_ci_with_one_trial_uses_variance_across_problems():
    y = np.array([[1.0], [0.0], [1.0], [0.0], [1.0], [0.0], [1.0], [1.0], [0.0], [0.0]])
    interval = stats.within_problem_ci(y.tolist())
    # 0/1 outcomes with one trial: the old Bernoulli estimate a(1-a) gave zero width here.
    assert interval.mean == pytest.approx(0.5)
    half = (interval.ci_high - interval.ci_low) / 2
    assert half == pytest.approx(official_margin(y), rel=1e-4)
    assert half == pytest.approx(1.96 * math.sqrt(10 * 0.25 / 9 / 10), rel=1e-4)


def test_within_problem_ci_with_repeats_matches_the_official_formula():
    y = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.5, 0.0, 1.0]])
    interval = stats.within_problem_ci(y.tolist())
    assert interval.mean == pytest.approx(y.mean())
    assert (interval.ci_high - interval.ci_low) / 2 == pytest.approx(official_margin(y), rel=1e-4)
    assert stats.within_problem_ci([[1.0, 1.0], [0.0, 0.0]]).ci_low == 0.5


def test_within_problem_ci_rejects_ragged_trials():
    with pytest.raises(ValueError, match="same number of trials"):
        stats.within_problem_ci([[1.0], [0.0, 1.0]])


def test_bootstrap_ci_brackets_mean():
    interval = stats.bootstrap_ci([0, 1] * 50, resamples=500)
    assert interval.ci_low < 0.5 < interval.ci_high


def test_forward_flops_are_params_plus_attention():
    shape = ModelShape(non_embedding_params=10, num_layers=2, attention_width=4)
    # tokens at positions 3 and 4 attend over 4 and 5 positions
    assert shape.forward_flops(3, 2) == 2 * 10 * 2 + 2 * 2 * 4 * (4 + 5)
    assert shape.forward_flops(0, 5) == shape.forward_flops(0, 3) + shape.forward_flops(3, 2)


def test_official_grouping_compares_each_answer_with_each_groups_first_member():
    """The official equivalence_partition_with_weights, on a relation that is not transitive:
    a~b and b~c but not a~c. The official pass over (a, b, c) puts a and b together (b equals the
    first member a) and starts a new group for c (c is compared with a only); the closure joins
    all three. Over (b, a, c) the official pass joins all three (both equal the first member b)."""
    from tracefactory.search.voting import assign_groups

    same = {("a", "b"), ("b", "c")}
    answers = ["c", None, "a", "b", "a"]
    assert assign_groups(answers, ["a", "b", "c"], same, "first_member") == [1, None, 0, 0, 0]
    assert assign_groups(answers, ["a", "b", "c"], same, "closure") == [0, None, 0, 0, 0]
    same = {("b", "a"), ("b", "c")}
    assert assign_groups(answers, ["b", "a", "c"], same, "first_member") == [0, None, 0, 0, 0]
    # Only w and y are equal: groups are numbered in order of creation.
    same = {("w", "y")}
    assert assign_groups(["x", "w", "z", "y"], ["x", "w", "z", "y"], same, "first_member") == [
        0, 1, 2, 1,
    ]  # fmt: skip


def test_official_bon_takes_the_first_maximum():
    """The official classifier_bon (torch.argmax: the first maximal index) on small vectors."""
    ts = traces([False, True, True, False], [0.7, 0.9, 0.9, 0.2])
    assert best_of_n(ts, "first") == 1.0  # index 1, the first 0.9
    assert best_of_n(ts, "average") == 1.0
    ts = traces([False, True, False], [0.9, 0.9, 0.9])
    assert best_of_n(ts, "first") == 0.0  # index 0
    assert best_of_n(ts, "average") == pytest.approx(1 / 3)
    ts = traces([True, False], [0.5, 0.5 + 5e-6])
    assert best_of_n(ts, "first") == 0.0  # the strictly larger value, however close
    assert best_of_n(ts, "average") == pytest.approx(0.5)  # within 1e-5: a tie
