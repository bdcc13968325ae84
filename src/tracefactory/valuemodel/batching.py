"""Which rows each training step takes: deterministic order, length-grouped micro-batches.

Three samplers (``train.sampler``), each a pure function of (seed, step), so a resumed run sees
exactly the data the uninterrupted run would have:

- ``rows``: ``batch_size`` rows from a per-epoch permutation of all rows drawn from (seed, epoch).
- ``problem_pairs``: ``batch_size / 2`` problems from a per-epoch permutation, two roll-outs of
  each drawn at random per step (every problem once an epoch; not every row).
- ``official``: the official trainer's ``FlattenedDataset`` + ``EndlessSampler``: each problem's
  roll-outs, in dataset order, form fixed adjacent pairs (2k, 2k+1); the pairs are shuffled once an
  epoch (Python ``random.Random((epoch + 1) * 1337)``, the official seed, whatever the run seed) and
  read in that order, ``batch_size / 2`` pairs a step, so every row is seen once an epoch and a step
  may span two epochs. On the paper's OpenR1-VM (56 roll-outs a problem) the pair order is the
  official trainer's.

Within a step the rows are sorted by length and cut into micro-batches of at most
``micro_batch_tokens`` padded tokens. The step's gradient is that of the same rows in one batch,
but a micro-batch only holds rows of similar length, so padding stays a small fraction of the
processed tokens (the official trainer pads every batch to a multiple of 1,024).
"""

from __future__ import annotations

import math
import random
from functools import lru_cache

import numpy as np

from tracefactory.errors import ConfigError
from tracefactory.valuemodel.config import Sampler

IGNORE_LABEL = -1  # token_labels value of context (prompt and roll-in) tokens: no loss there


def steps_per_epoch(num_rows: int, batch_size: int) -> int:
    return math.ceil(num_rows / batch_size)


def step_rows(num_rows: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Rows of step ``step``: a slice of its epoch's permutation, drawn from (seed, epoch)."""
    per_epoch = steps_per_epoch(num_rows, batch_size)
    epoch, index = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(num_rows)
    return order[index * batch_size : (index + 1) * batch_size]


def pair_steps_per_epoch(problem_id: np.ndarray, batch_size: int) -> int:
    return math.ceil(len(np.unique(problem_id)) / max(1, batch_size // 2))


def step_pairs(problem_id: np.ndarray, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Rows of step ``step`` (``problem_pairs``): ``batch_size // 2`` problems, two rows each.

    Problems come from a per-epoch permutation drawn from (seed, epoch); each problem's two
    roll-outs are drawn from (seed, step) without replacement (a problem with one roll-out gives
    it twice). Like ``step_rows``, a pure function of (seed, step).
    """
    order = np.argsort(problem_id, kind="stable")  # rows grouped by problem, in problem order
    problems, starts, counts = np.unique(problem_id[order], return_index=True, return_counts=True)
    per_step = max(1, batch_size // 2)
    epoch, index = divmod(step, math.ceil(len(problems) / per_step))
    chosen = np.random.default_rng([seed, epoch]).permutation(len(problems))
    chosen = chosen[index * per_step : (index + 1) * per_step]
    rng = np.random.default_rng([seed, epoch, index, 2])
    rows = []
    for p in chosen:
        picked = rng.choice(counts[p], size=2, replace=bool(counts[p] < 2))
        rows.extend(order[starts[p] + picked])
    return np.asarray(rows, dtype=np.int64)


class AdjacentPairs:
    """The ``official`` sampler: fixed adjacent pairs of a problem's roll-outs, shuffled per epoch.

    Rows are grouped by problem in dataset order; a problem's rows (2k, 2k+1) are pair k (an odd
    last row is a pair of its own). Pair epochs follow one another; step ``s`` (0-based) takes
    pairs ``s * P .. (s + 1) * P - 1`` of that stream, ``P = batch_size // 2``.
    """

    def __init__(self, problem_id: np.ndarray, batch_size: int) -> None:
        self._order = np.argsort(problem_id, kind="stable")  # rows by problem, dataset order
        _, first, counts = np.unique(problem_id[self._order], return_index=True, return_counts=True)
        pairs = (counts + 1) // 2  # per problem
        within = np.arange(pairs.sum()) - np.repeat(np.cumsum(pairs) - pairs, pairs)
        self._starts = np.repeat(first, pairs) + 2 * within  # pair i: _order[start : end]
        self._ends = np.minimum(self._starts + 2, np.repeat(first + counts, pairs))
        self.pairs_per_step = max(1, batch_size // 2)

    @property
    def steps_per_epoch(self) -> float:
        return len(self._starts) / self.pairs_per_step

    def rows(self, step: int) -> np.ndarray:
        """Rows of step ``step`` (0-based), pair after pair."""
        count = len(self._starts)
        first = step * self.pairs_per_step
        positions = range(first, first + self.pairs_per_step)
        picked = [self._epoch_order(p // count)[p % count] for p in positions]
        return np.concatenate([self._order[self._starts[i] : self._ends[i]] for i in picked])

    @lru_cache(maxsize=2)  # noqa: B019 - two epochs at a time; the sampler lives for the run
    def _epoch_order(self, epoch: int) -> np.ndarray:
        order = list(range(len(self._starts)))
        random.Random((epoch + 1) * 1337).shuffle(order)  # the official EndlessSampler's seed
        return np.asarray(order, dtype=np.int64)


class _Rows:
    def __init__(self, num_rows: int, batch_size: int, seed: int) -> None:
        self.num_rows, self.batch_size, self.seed = num_rows, batch_size, seed
        self.steps_per_epoch = steps_per_epoch(num_rows, batch_size)

    def rows(self, step: int) -> np.ndarray:
        return step_rows(self.num_rows, self.batch_size, self.seed, step)


class _ProblemPairs:
    def __init__(self, problem_id: np.ndarray, batch_size: int, seed: int) -> None:
        self.problem_id, self.batch_size, self.seed = problem_id, batch_size, seed
        self.steps_per_epoch = pair_steps_per_epoch(problem_id, batch_size)

    def rows(self, step: int) -> np.ndarray:
        return step_pairs(self.problem_id, self.batch_size, self.seed, step)


def step_sampler(sampler: Sampler, problem_id: np.ndarray, batch_size: int, seed: int):
    """The sampler ``train.sampler`` names: ``steps_per_epoch`` and ``rows(step)`` (0-based).

    Raises:
        ConfigError: a pair sampler with an odd ``batch_size``.
    """
    if sampler == Sampler.ROWS:
        return _Rows(len(problem_id), batch_size, seed)
    if batch_size % 2:
        raise ConfigError(f"train.sampler={sampler} takes pairs: batch_size={batch_size} is odd")
    if sampler == Sampler.PROBLEM_PAIRS:
        return _ProblemPairs(problem_id, batch_size, seed)
    return AdjacentPairs(problem_id, batch_size)


def micro_batches(
    rows: np.ndarray,
    lengths: np.ndarray,
    token_budget: int,
    rank: int = 0,
    world_size: int = 1,
    overhead_tokens: int = 512,
) -> list[np.ndarray]:
    """This rank's share of a step's rows, cut into length-grouped micro-batches.

    Rows are sorted longest first and dealt to ranks in turn (each rank gets a similar mix of
    lengths). The sorted rows are then cut into runs that minimise the padded tokens processed plus
    ``overhead_tokens`` per micro-batch (the cost of one more forward pass), with every run's padded
    size (count x longest) within ``token_budget`` (a longer row gets a micro-batch of its own).
    """
    ordered = rows[np.argsort(-lengths[rows], kind="stable")][rank::world_size]
    longest = lengths[ordered].astype(
        np.int64
    )  # (n,) descending: a run starting at i pads to longest[i]
    n = len(ordered)
    best = np.zeros(n + 1)  # best[j]: least cost of cutting the first j rows
    cut_at = np.zeros(n + 1, dtype=np.int64)
    for j in range(1, n + 1):
        starts = np.arange(j)
        padded = (j - starts) * longest[:j]
        cost = best[:j] + padded + overhead_tokens
        cost[(padded > token_budget) & (starts < j - 1)] = np.inf  # a single row always fits
        cut_at[j] = int(np.argmin(cost))
        best[j] = cost[cut_at[j]]
    batches, end = [], n
    while end > 0:
        batches.append(ordered[cut_at[end] : end])
        end = cut_at[end]
    return batches[::-1]
