"""Confidence intervals for benchmark accuracies and for paired method differences.

Three questions, three intervals (95%, normal quantile 1.96 unless bootstrapped):

- ``within_problem_ci``: how much would the accuracy move if the *same* problems were run again
  with new seeds? The paper's estimate: per problem, the variance of its outcome (the spread of
  repeated runs when there are several, else ``a (1 - a)``, the variance of a 0/1 outcome with mean
  ``a``), summed over problems.
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

    Args:
        trials: per problem, the accuracy of each repeated run (seed or disjoint sample subset).
    """
    means = problem_means(trials)
    variances = []
    for values, mean in zip(trials, means, strict=True):
        if len(values) >= 2:
            variances.append(float(np.var(values, ddof=1)) / len(values))
        else:
            variances.append(mean * (1.0 - mean))
    half = Z_95 * math.sqrt(sum(variances)) / len(means)
    center = float(means.mean())
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
