"""Confidence intervals for benchmark accuracies and for paired method differences.

Three questions, three intervals (95%, normal quantile 1.96 unless bootstrapped):

- ``within_problem_ci``: how much would the accuracy move if the *same* problems were run again
  with new seeds? The paper's estimate: the average spread of repeated runs within a problem; with
  a single run per problem, the spread across problems (as the official code does).
- ``bootstrap_ci``: how much would it move on *another* set of problems like these? Percentile
  bootstrap over problems.
- ``paired_ci``: is method A better than method B *on these problems*? The per-problem difference
  removes the problem-difficulty variance both methods share; this is the honest test on one
  problem set (a difference whose interval excludes zero).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Interval:
    """A mean and its 95% interval."""

    mean: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "ci_low": self.ci_low, "ci_high": self.ci_high}


def problem_means(trials: Sequence[Sequence[float]]) -> np.ndarray:
    """Per problem, the mean of its repeated trials."""
    if not trials or any(len(t) == 0 for t in trials):
        raise ValueError("every problem needs at least one trial")
    return np.array([float(np.mean(t)) for t in trials])


def within_problem_ci(trials: Sequence[Sequence[float]]) -> Interval:
    """Mean accuracy over problems with the paper's within-problem 95% interval.

    The official estimator (``estimate_mean_and_error`` of the paper's code) on ``N`` problems with
    ``M`` trials each: with ``M >= 2`` the variance of the mean is the average within-problem
    variance over ``N * M``; with one trial there is no within-problem spread to measure, so it
    falls back to the variance across problems over ``N`` (a zero-width interval would claim a
    certainty one run cannot give).

    Args:
        trials: per problem, the accuracy of each repeated run (seed or disjoint sample subset);
            every problem has the same number of trials.

    Raises:
        ValueError: no problems, a problem without trials, or unequal trial counts.
    """
    problem_means(trials)
    counts = {len(t) for t in trials}
    if len(counts) != 1:
        raise ValueError(f"every problem needs the same number of trials, got {sorted(counts)}")
    values = np.asarray(trials, dtype=float)  # (N, M)
    n, m = values.shape
    center = float(values.mean())
    if m == 1:
        variance = float(np.var(values[:, 0], ddof=1)) / n if n >= 2 else float("nan")
    else:
        variance = float(np.var(values, axis=1, ddof=1).mean()) / (n * m)
    half = Z_95 * math.sqrt(variance)
    # A normal interval can reach past [0, 1] on few problems; accuracy cannot.
    return Interval(center, max(0.0, center - half), min(1.0, center + half))


def bootstrap_ci(per_problem: Sequence[float], resamples: int = 2000, seed: int = 0) -> Interval:
    """Mean over problems with a percentile-bootstrap 95% interval (problems resampled)."""
    values = np.asarray(per_problem, dtype=float)
    if values.size == 0:
        raise ValueError("bootstrap_ci needs at least one problem")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.size, size=(resamples, values.size))
    boot = values[picks].mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return Interval(float(values.mean()), float(low), float(high))


def paired_ci(first: Sequence[float], second: Sequence[float]) -> Interval:
    """Mean per-problem difference ``first - second`` with its 95% interval.

    Raises:
        ValueError: the two methods were not run on the same number of problems.
    """
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired_ci needs equal, non-empty problem lists ({a.size} vs {b.size})")
    diff = a - b
    center = float(diff.mean())
    if diff.size < 2:
        return Interval(center, float("nan"), float("nan"))
    half = Z_95 * float(diff.std(ddof=1)) / math.sqrt(diff.size)
    return Interval(center, center - half, center + half)
