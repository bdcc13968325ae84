"""Label statistics for the dataset card, computed with polars from the actual tables.

Only light columns are read (classes, ids, positions and list lengths, never the token lists
themselves into Python), so the statistics of a paper-scale table fit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tracefactory.io import TableReader
from tracefactory.schemas import CLASS_NAMES

CUT_BINS = 10  # bins of the relative cut position (cut_position / roll-in length)


@dataclass(frozen=True)
class DatasetStats:
    """Everything the card and its figures say about the data.

    ``rows`` has one light row per labels row: problem_id, source, rollin_policy, rollout_policy,
    split, label, branch_value, branch_count, rollin_length, context_length, rollout_length,
    relative_cut.
    """

    rows: pl.DataFrame
    verdicts: pl.DataFrame  # roll-out verdicts: problem_id, label, reason, grader_version

    @property
    def num_rows(self) -> int:
        return self.rows.height

    @property
    def num_problems(self) -> int:
        return self.rows["problem_id"].n_unique()

    @property
    def supervised_tokens(self) -> int:
        return int(self.rows["rollout_length"].sum() or 0)

    @property
    def context_tokens(self) -> int:
        return int(self.rows["context_length"].sum() or 0)

    @property
    def rollouts_per_branch_point(self) -> int:
        """The most roll-outs any branch point has (``branch_count``): at 1, ``branch_value`` is
        each roll-out's own outcome, no average."""
        return int(self.rows["branch_count"].max() or 0)

    def splits(self) -> pl.DataFrame:
        """Rows, problems and labelled tokens per value-model split."""
        return (
            self.rows.group_by("split")
            .agg(
                pl.len().alias("rollouts"),
                pl.col("problem_id").n_unique().alias("problems"),
                pl.col("rollout_length").sum().alias("labelled_tokens"),
            )
            .sort("split", descending=True)
        )

    def class_balance(self) -> pl.DataFrame:
        """Roll-outs (and labelled tokens) per class, with their shares."""
        counts = self.rows.group_by("label").agg(
            pl.len().alias("rollouts"), pl.col("rollout_length").sum().alias("tokens")
        )
        every = pl.DataFrame({"label": list(range(len(CLASS_NAMES)))}, schema={"label": pl.Int8})
        return (
            every.join(counts, on="label", how="left")
            .fill_null(0)
            .with_columns(
                pl.col("label")
                .replace_strict(dict(enumerate(CLASS_NAMES)), return_dtype=pl.String)
                .alias("class"),
                (pl.col("rollouts") / max(self.num_rows, 1)).alias("share"),
                (pl.col("tokens") / max(self.supervised_tokens, 1)).alias("token_share"),
            )
            .sort("label")
        )

    def success_by(self, column: str) -> pl.DataFrame:
        """Roll-outs, problems and success rate (share of class 1) per value of ``column``."""
        return (
            self.rows.group_by(column)
            .agg(
                pl.len().alias("rollouts"),
                pl.col("problem_id").n_unique().alias("problems"),
                (pl.col("label") == 1).mean().alias("success_rate"),
            )
            .sort(column)
        )

    def success_by_cut(self) -> pl.DataFrame:
        """Success rate per bin of relative cut position (0: branch at the start of the roll-in)."""
        binned = pl.min_horizontal(
            (pl.col("relative_cut") * CUT_BINS).floor().cast(pl.Int32), CUT_BINS - 1
        )
        return (
            self.rows.drop_nulls("relative_cut")
            .group_by(binned.alias("bin"))
            .agg(pl.len().alias("rollouts"), (pl.col("label") == 1).mean().alias("success_rate"))
            .with_columns(
                (pl.col("bin") / CUT_BINS).alias("from"),
                ((pl.col("bin") + 1) / CUT_BINS).alias("to"),
            )
            .sort("bin")
        )

    def problem_values(self) -> pl.DataFrame:
        """Per problem: Monte Carlo value (mean success) and the spread of its branch values."""
        return self.rows.group_by("problem_id").agg(
            (pl.col("label") == 1).mean().alias("mc_value"),
            pl.col("branch_value").std(ddof=0).fill_null(0.0).alias("branch_value_std"),
            (pl.col("branch_value").max() - pl.col("branch_value").min()).alias(
                "branch_value_range"
            ),
            pl.len().alias("rollouts"),
        )

    def length_quantiles(self) -> pl.DataFrame:
        """Median, p90, p99 and max of each length column, in tokens."""
        columns = ["rollin_length", "context_length", "rollout_length"]
        return pl.DataFrame(
            {
                "length": columns,
                **{
                    name: [self.rows[c].quantile(q, "nearest") for c in columns]
                    for name, q in (("median", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
                },
            }
        )

    def graded(self) -> dict[str, int]:
        """What the verdicts table holds against what the dataset kept."""
        graded_problems = self.verdicts["problem_id"].n_unique()
        return {
            "graded_rollouts": self.verdicts.height,
            "graded_problems": graded_problems,
            "kept_problems": self.num_problems,
            "dropped_problems": graded_problems - self.num_problems,
        }

    def grader_versions(self) -> list[str]:
        return sorted(self.verdicts["grader_version"].unique().to_list())

    def verdict_reasons(self) -> pl.DataFrame:
        return self.verdicts.group_by("reason").agg(pl.len().alias("rollouts")).sort("reason")


def collect_stats(labels_dir: str | Path, verdicts_dir: str | Path) -> DatasetStats:
    """Read the light columns of the labels and roll-out verdicts tables."""
    input_length = pl.col("input_ids").list.len()
    rows = (
        TableReader(labels_dir)
        .scan()
        .select(
            "problem_id",
            "source",
            "rollin_policy",
            "rollout_policy",
            "split",
            "label",
            "branch_value",
            "branch_count",
            "rollin_length",
            pl.col("supervised_start").alias("context_length"),
            (input_length - pl.col("supervised_start")).alias("rollout_length"),
            pl.when(pl.col("rollin_length") > 0)
            .then(pl.col("cut_position") / pl.col("rollin_length"))
            .alias("relative_cut"),
        )
        .collect(engine="streaming")
    )
    verdicts = (
        TableReader(verdicts_dir)
        .scan()
        .filter(pl.col("trace_table") == "rollouts")
        .select("problem_id", "label", "reason", "grader_version")
        .collect()
    )
    return DatasetStats(rows=rows, verdicts=verdicts)
