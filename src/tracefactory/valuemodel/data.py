"""The labels table as training batches: deterministic order, length-grouped micro-batches.

Each optimiser step takes ``batch_size`` rows from a per-epoch permutation drawn from (seed, epoch),
so the rows of step ``s`` are a pure function of (seed, s): a resumed run sees exactly the data the
uninterrupted run would have. Within a step the rows are sorted by length and cut into micro-batches
of at most ``micro_batch_tokens`` padded tokens. The step's gradient is the same as for a random
batch (the paper's scheme), but a micro-batch only holds rows of similar length, so padding stays a
small fraction of the processed tokens (the official trainer pads every batch to a multiple
of 1,024).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import polars as pl
import torch

from tracefactory.errors import SchemaError
from tracefactory.io import TableReader
from tracefactory.stats import Stats

logger = logging.getLogger(__name__)

IGNORE_LABEL = -1  # token_labels value of context (prompt and roll-in) tokens: no loss there
_COLUMNS = [
    "rollout_id",
    "problem_id",
    "split",
    "input_ids",
    "supervised_start",
    "token_labels",
    "label",
    "branch_value",
    "cut_position",
    "rollin_length",
]


class DropReason(StrEnum):
    """Why a labels row is not used for training."""

    TOO_LONG = "dropped_too_long"  # more tokens than max_length
    NO_ROLLOUT_TOKENS = "dropped_no_rollout_tokens"  # supervised_start at the end: nothing to learn


@dataclass(frozen=True)
class LabelSplit:
    """One split as flat arrays (5 bytes a token): row ``i`` is ``tokens[offsets[i]:offsets[i+1]]``.

    ``token_targets`` is aligned with ``tokens``: the class of each roll-out token, ``IGNORE_LABEL``
    on context tokens.
    """

    tokens: np.ndarray  # (N_tokens,) int32
    token_targets: np.ndarray  # (N_tokens,) int8
    offsets: np.ndarray  # (N_rows + 1,) int64
    supervised_start: np.ndarray  # (N_rows,) int64
    label: np.ndarray  # (N_rows,) int8: trajectory class
    branch_value: np.ndarray  # (N_rows,) float32
    problem_id: np.ndarray  # (N_rows,) object (str)

    @property
    def num_rows(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sequence(self, row: int) -> np.ndarray:
        return self.tokens[self.offsets[row] : self.offsets[row + 1]]

    def batch(
        self, rows: np.ndarray, device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        """Right-padded ``rows``: input_ids, attention_mask, targets (B, T); branch_value (B,)."""
        width = int(self.lengths[rows].max())
        ids = np.zeros((len(rows), width), dtype=np.int64)
        targets = np.full((len(rows), width), IGNORE_LABEL, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            start, end = self.offsets[row], self.offsets[row + 1]
            ids[i, : end - start] = self.tokens[start:end]
            targets[i, : end - start] = self.token_targets[start:end]
            mask[i, : end - start] = 1
        arrays = {"input_ids": ids, "attention_mask": mask, "targets": targets}
        out = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
        out["branch_value"] = torch.from_numpy(self.branch_value[rows]).to(device)
        return out


def read_labels(labels_dir: str | Path, max_length: int) -> tuple[LabelSplit, LabelSplit, Stats]:
    """Read the labels table through its schema and split it into (train, val).

    Raises:
        StageInputError: if the table is missing or unfinished.
        SchemaError: if a row's token_labels do not cover input_ids[supervised_start:].
    """
    frame = TableReader(labels_dir).scan().select(_COLUMNS).collect()
    stats = Stats()
    stats.update("rows_read", frame.height)
    frame = frame.with_columns(
        pl.col("input_ids").list.len().alias("length"),
        pl.col("token_labels").list.len().alias("labelled"),
    )
    bad = frame.filter(pl.col("labelled") != pl.col("length") - pl.col("supervised_start"))
    if bad.height:
        raise SchemaError(
            f"{labels_dir}: {bad.height} row(s) whose token_labels do not cover "
            f"input_ids[supervised_start:], e.g. rollout_id {bad['rollout_id'][0]!r}"
        )
    too_long = pl.col("length") > max_length
    empty = pl.col("labelled") == 0
    stats.update(DropReason.TOO_LONG, frame.filter(too_long).height)
    stats.update(DropReason.NO_ROLLOUT_TOKENS, frame.filter(empty & ~too_long).height)
    frame = frame.filter(~too_long & ~empty)
    train = _to_split(frame.filter(pl.col("split") == "train"))
    val = _to_split(frame.filter(pl.col("split") == "val"))
    stats.update("rows_train", train.num_rows)
    stats.update("rows_val", val.num_rows)
    logger.info("labels %s: %s", labels_dir, stats.as_dict())
    return train, val, stats


def _to_split(frame: pl.DataFrame) -> LabelSplit:
    lengths = frame["length"].to_numpy().astype(np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = frame["input_ids"].explode().to_numpy().astype(np.int32)
    start = frame["supervised_start"].to_numpy().astype(np.int64)
    labelled = frame["labelled"].to_numpy().astype(np.int64)
    # Position of every labelled token in the flat token array.
    row = np.repeat(np.arange(len(lengths)), labelled)
    first_label = np.repeat(np.cumsum(labelled) - labelled, labelled)
    within = np.arange(int(labelled.sum())) - first_label
    targets = np.full(len(tokens), IGNORE_LABEL, dtype=np.int8)
    targets[offsets[row] + start[row] + within] = frame["token_labels"].explode().to_numpy()
    return LabelSplit(
        tokens=tokens,
        token_targets=targets,
        offsets=offsets,
        supervised_start=start,
        label=frame["label"].to_numpy().astype(np.int8),
        branch_value=frame["branch_value"].to_numpy().astype(np.float32),
        problem_id=frame["problem_id"].to_numpy().astype(object),
    )


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
