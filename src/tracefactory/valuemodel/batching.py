"""Which rows each training step takes: deterministic order, length-grouped micro-batches.

Each optimiser step takes ``batch_size`` rows from a per-epoch permutation drawn from (seed, epoch),
so the rows of step ``s`` are a pure function of (seed, s): a resumed run sees exactly the data the
uninterrupted run would have. Within a step the rows are sorted by length and cut into micro-batches
of at most ``micro_batch_tokens`` padded tokens. The step's gradient is the same as for a random
batch (the paper's scheme), but a micro-batch only holds rows of similar length, so padding stays a
small fraction of the processed tokens (the official trainer pads every batch to a multiple
of 1,024).
"""

from __future__ import annotations

import math

import numpy as np

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
    """Rows of step ``step`` in the official scheme: ``batch_size // 2`` problems, two rows each.

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
