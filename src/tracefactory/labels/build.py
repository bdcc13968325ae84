"""Value labels as polars joins: one labels row per graded roll-out (the paper, section 3).

A roll-out continues a branch point: the prompt plus the first ``cut_position`` generated tokens of
its roll-in. Its row holds that context followed by the roll-out (``input_ids``), the index where
the roll-out starts (``supervised_start``), the trajectory's class, and one value target per
roll-out token: every roll-out token carries its trajectory's outcome, so the targets are a
per-token Monte Carlo sample of the roll-out policy's success probability. The branch point's
Monte Carlo value (mean success over its sibling roll-outs) is stored beside it, so a trainer can
use the sibling-averaged target instead.

Each input is read once. Bookkeeping (joins, drops, counts, group-bys) runs on light columns that
carry row numbers into the roll-outs and roll-ins; the token lists are gathered by row number only
for the rows that survive, after the light rows are sorted, so no token list is hashed or sorted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import polars as pl
import pyarrow as pa

from tracefactory.errors import StageInputError
from tracefactory.schemas import TrajectoryClass
from tracefactory.seeds import text_seed

LABEL_COLUMNS = [
    "rollout_id",
    "rollin_id",
    "problem_id",
    "source",
    "rollin_policy",
    "rollout_policy",
    "split",
    "input_ids",
    "supervised_start",
    "cut_position",
    "rollin_length",
    "label",
    "token_labels",
    "branch_value",
    "branch_count",
]


class LabelCount(StrEnum):
    """Counters of the label stage (``dropped_*`` are rows of ``rollouts`` left out)."""

    ROLLOUTS = "rollouts"  # labelled roll-outs (rows written)
    TOKENS = "tokens"  # labelled (supervised) tokens
    PROBLEMS = "problems"  # problems with at least one labelled roll-out
    DROPPED_ALL_FAILED = "dropped_all_failed"  # roll-outs of problems with no correct roll-out
    DROPPED_ALL_FAILED_PROBLEMS = "dropped_all_failed_problems"  # those problems
    DROPPED_NO_VERDICT = "dropped_no_verdict"  # roll-outs the verdicts table does not grade
    DROPPED_PROBLEM_SPLIT = "dropped_problem_split"  # problems-table split not in problem_splits
    DROPPED_BAD_CUT = "dropped_bad_cut"  # cut_position beyond the roll-in's generated tokens


@dataclass(frozen=True)
class LabelInputs:
    """The four input tables as lazy frames (already restricted to one shard's problems)."""

    problems: pl.LazyFrame
    rollins: pl.LazyFrame
    rollouts: pl.LazyFrame
    verdicts: pl.LazyFrame


def value_split(problem_id: str, val_fraction: float) -> str:
    """The value-model split of a problem: ``val`` for a stable ``val_fraction`` of problem ids.

    The id's SHA-256 is read as a number in [0, 1), so the split never depends on which shard,
    worker or run saw the problem, and raising ``val_fraction`` only moves problems into val.
    """
    return "val" if _position(problem_id) < val_fraction else "train"


def val_fraction_for_count(problem_ids: list[str], count: int) -> float:
    """The ``val_fraction`` that puts exactly ``count`` of ``problem_ids`` in val (all if fewer).

    The threshold sits halfway between the ``count``-th and the next id position, so
    ``value_split`` keeps deciding each problem alone and by its id.
    """
    positions = sorted(_position(p) for p in problem_ids)
    if count >= len(positions):
        return 1.0
    return (positions[count - 1] + positions[count]) / 2


def labelled_problem_ids(
    inputs: LabelInputs, problem_splits: list[str], drop_all_failed: bool
) -> list[str]:
    """The problems that keep a labelled roll-out, sorted: graded roll-outs of a labelled split
    and, with ``drop_all_failed``, at least one of them correct.

    ``label.val_problems`` counts among these, so the value-model val split holds exactly that
    many problems after the drops. Read from light columns only; a roll-out cut beyond its
    roll-in (corrupt input, counted as ``dropped_bad_cut``) is not looked for here.
    """
    verdicts = inputs.verdicts.filter(pl.col("trace_table") == "rollouts").select(
        pl.col("trace_id").alias("rollout_id"), "label"
    )
    labelled = inputs.problems.filter(pl.col("split").is_in(problem_splits)).select("problem_id")
    graded = (
        inputs.rollouts.select("rollout_id", "problem_id")
        .join(verdicts, on="rollout_id", how="inner")
        .join(labelled, on="problem_id", how="semi")
    )
    if drop_all_failed:
        graded = graded.filter(pl.col("label") == TrajectoryClass.CORRECT)
    return sorted(graded.select("problem_id").unique().collect()["problem_id"].to_list())


def _position(problem_id: str) -> float:
    return text_seed(f"value-split:{problem_id}") / 2**64


def build_labels(
    inputs: LabelInputs,
    val_fraction: float,
    problem_splits: list[str],
    drop_all_failed: bool = True,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Join one shard's tables into labels rows (``schemas/labels.yaml`` order) and counters.

    Args:
        inputs: the shard's problems, roll-ins, roll-outs and verdicts.
        val_fraction: share of problems put in the value-model ``val`` split.
        problem_splits: problems-table splits whose roll-outs are labelled.
        drop_all_failed: drop the problems none of whose roll-outs is correct.

    Returns:
        The rows sorted by ``rollout_id``, and ``LabelCount`` counters.

    Raises:
        StageInputError: a roll-out names a roll-in or problem that its table lacks.
    """
    rollouts = inputs.rollouts.select(
        "rollout_id", "rollin_id", "problem_id", "policy", "cut_index", "cut_position", "token_ids"
    ).collect()
    rollins = inputs.rollins.select("rollin_id", "policy", "prompt_ids", "token_ids").collect()
    light, counts = _graded_rollouts(inputs, rollouts, rollins, problem_splits)
    light, counts[LabelCount.DROPPED_BAD_CUT] = _drop(
        light, pl.col("cut_position") <= pl.col("rollin_length")
    )
    light = _with_branch_values(light)
    solved = pl.col("label").eq(TrajectoryClass.CORRECT).any().over("problem_id")
    if drop_all_failed:
        failed = light.filter(~solved)
        counts[LabelCount.DROPPED_ALL_FAILED] = failed.height
        counts[LabelCount.DROPPED_ALL_FAILED_PROBLEMS] = failed["problem_id"].n_unique()
        light = light.filter(solved)
    splits = pl.DataFrame(
        [(p, value_split(p, val_fraction)) for p in light["problem_id"].unique().to_list()],
        schema={"problem_id": pl.String, "split": pl.String},
        orient="row",
    )
    light = light.join(splits, on="problem_id", maintain_order="left")
    rows = _with_tokens(light, rollouts, rollins)
    counts[LabelCount.ROLLOUTS] = rows.height
    counts[LabelCount.TOKENS] = int(rows["token_labels"].list.len().sum() or 0)
    counts[LabelCount.PROBLEMS] = rows["problem_id"].n_unique()
    return rows, {str(k): int(v) for k, v in counts.items()}


def _drop(frame: pl.DataFrame, keep: pl.Expr) -> tuple[pl.DataFrame, int]:
    kept = frame.filter(keep)
    return kept, frame.height - kept.height


def _graded_rollouts(
    inputs: LabelInputs, rollouts: pl.DataFrame, rollins: pl.DataFrame, problem_splits: list[str]
) -> tuple[pl.DataFrame, dict[LabelCount, int]]:
    """Light columns of every roll-out with its verdict, roll-in and problem; drops counted.

    ``_rollout_row`` and ``_rollin_row`` point into ``rollouts`` and ``rollins``."""
    verdicts = inputs.verdicts.filter(pl.col("trace_table") == "rollouts").select(
        pl.col("trace_id").alias("rollout_id"), "label"
    )
    rollin_rows = rollins.with_row_index("_rollin_row").select(
        "rollin_id",
        "_rollin_row",
        pl.col("policy").alias("rollin_policy"),
        pl.col("token_ids").list.len().cast(pl.Int32).alias("rollin_length"),
    )
    problems = inputs.problems.select(
        "problem_id", "source", pl.col("split").alias("problem_split")
    )
    frame = (
        rollouts.lazy()
        .with_row_index("_rollout_row")
        .select(
            "_rollout_row",
            "rollout_id",
            "rollin_id",
            "problem_id",
            pl.col("policy").alias("rollout_policy"),
            "cut_index",
            "cut_position",
        )
        .join(verdicts, on="rollout_id", how="left")
        .join(rollin_rows.lazy(), on="rollin_id", how="left")
        .join(problems, on="problem_id", how="left")
        .collect()
    )
    _require_present(frame, "_rollin_row", "rollin_id", "the rollins table")
    _require_present(frame, "source", "problem_id", "the problems table")
    counts: dict[LabelCount, int] = {}
    frame, counts[LabelCount.DROPPED_PROBLEM_SPLIT] = _drop(
        frame, pl.col("problem_split").is_in(problem_splits)
    )
    frame, counts[LabelCount.DROPPED_NO_VERDICT] = _drop(frame, pl.col("label").is_not_null())
    return frame.drop("problem_split"), counts


def _require_present(frame: pl.DataFrame, marker: str, key: str, table: str) -> None:
    orphans = frame.filter(pl.col(marker).is_null())
    if orphans.height:
        example = orphans[key].unique().sort().head(3).to_list()
        raise StageInputError(
            f"{orphans.height} roll-out(s) name a {key} missing from {table}, e.g. {example}"
        )


def _with_branch_values(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the branch point's Monte Carlo value: mean success over its sibling roll-outs."""
    branch = ["rollin_id", "cut_index"]
    return frame.with_columns(
        pl.col("label")
        .eq(TrajectoryClass.CORRECT)
        .mean()
        .over(branch)
        .cast(pl.Float32)
        .alias("branch_value"),
        pl.len().over(branch).cast(pl.Int32).alias("branch_count"),
    )


def _with_tokens(
    light: pl.DataFrame, rollouts: pl.DataFrame, rollins: pl.DataFrame
) -> pl.DataFrame:
    """Gather the token lists of the kept roll-outs (sorted light rows first, so the heavy
    columns are never sorted) and build input ids and per-token targets."""
    light = light.sort("rollout_id")
    rollin_rows = light["_rollin_row"]
    prefix = pl.col("rollin_ids").list.head(pl.col("cut_position"))
    rows = light.with_columns(
        rollouts["token_ids"].gather(light["_rollout_row"]).alias("rollout_ids"),
        rollins["prompt_ids"].gather(rollin_rows).alias("prompt_ids"),
        rollins["token_ids"].gather(rollin_rows).alias("rollin_ids"),
    ).with_columns(
        pl.concat_list("prompt_ids", prefix, "rollout_ids").alias("input_ids"),
        (pl.col("prompt_ids").list.len() + pl.col("cut_position"))
        .cast(pl.Int32)
        .alias("supervised_start"),
    )
    token_labels = _per_token(rows["label"], rows["rollout_ids"]).alias("token_labels")
    return rows.with_columns(token_labels).select(LABEL_COLUMNS)


def _per_token(label: pl.Series, tokens: pl.Series) -> pl.Series:
    """Each row's ``label`` once per element of its ``tokens`` list, as ``list<int8>``: one
    numpy repeat over the flat values (list arithmetic over every token cost 15 times more,
    ``repeat_by`` 40 times; a labels shard holds millions of targets)."""
    lengths = tokens.list.len().to_numpy()
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.repeat(label.cast(pl.Int8).to_numpy(), lengths)
    return pl.Series(pa.LargeListArray.from_arrays(offsets, values))
