"""The ``label`` stage: a thin sharded runner around ``build_labels``.

Shards are groups of problems (sorted ids, ``problems_per_shard`` each), so everything a problem
needs (its roll-outs' sibling values, its drop decision) lives in one shard, memory stays bounded
by the shard, and a rerun skips finished shards. It runs in this process: the work is polars
joins that already use every core, so Ray actors would only add start-up time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from tracefactory.errors import StageInputError
from tracefactory.io import TableReader
from tracefactory.labels.build import (
    LabelCount,
    LabelInputs,
    build_labels,
    labelled_problem_ids,
    val_fraction_for_count,
)
from tracefactory.labels.config import LabelConfig
from tracefactory.models import require_same_tokenizer
from tracefactory.stage import Shard, ShardResult, Stage
from tracefactory.summaries import SummaryKey

if TYPE_CHECKING:
    from tracefactory.params import Params

_TABLES = ("problems", "rollins", "rollouts", "verdicts")


class LabelStage(Stage):
    """Writes ``data/labels``: one row per graded roll-out of a kept problem."""

    name = "label"
    output_schema = "labels"
    version = 1
    counters = LabelCount
    rate_counts = (LabelCount.ROLLOUTS, LabelCount.TOKENS)

    def __init__(self, config: LabelConfig) -> None:
        self.config = config
        self.inputs = {t: TableReader(getattr(config, f"{t}_dir")) for t in _TABLES}
        rollouts = self.inputs["rollouts"].metadata
        missing = [k for k in ("tokenizer", "tokenizer_hash") if k not in rollouts]
        if missing:
            raise StageInputError(f"{config.rollouts_dir}: table metadata lacks {missing}")
        require_same_tokenizer(
            f"the rollins table {config.rollins_dir}",
            self.inputs["rollins"].metadata.get("tokenizer_hash", ""),
            f"the rollouts table {config.rollouts_dir} ({rollouts['tokenizer']})",
            rollouts["tokenizer_hash"],
        )
        self._tokenizer = {k: rollouts[k] for k in ("tokenizer", "tokenizer_hash")}

    @classmethod
    def from_params(cls, params: Params) -> LabelStage:
        return cls(params.label)

    def plan(self) -> list[Shard]:
        """Groups of ``problems_per_shard`` problems; each shard's payload is its problem ids
        and the validation fraction, decided over every problem at once when ``val_problems``
        gives it as a count."""
        problem_ids = (
            self.inputs["rollouts"].scan().select("problem_id").unique().collect()["problem_id"]
        )
        ordered = sorted(problem_ids.to_list())
        val_fraction = self.config.val_fraction
        if self.config.val_problems is not None:  # by count, over the problems the drops leave
            tables = LabelInputs(**{t: r.scan() for t, r in self.inputs.items()})
            kept = labelled_problem_ids(
                tables, list(self.config.problem_splits), self.config.drop_all_failed
            )
            val_fraction = val_fraction_for_count(kept, self.config.val_problems)
        size = self.config.problems_per_shard
        return [
            Shard(f"labels-{i // size:05d}", payload=(ordered[i : i + size], val_fraction))
            for i in range(0, len(ordered), size)
        ]

    def identity(self) -> list:
        # input fingerprints: a resumed run never mixes shards made from other inputs
        return [self.config, *(self.inputs[t].fingerprint for t in _TABLES)]

    def table_metadata(self) -> dict[str, str]:
        return self._tokenizer

    def read(self, shard: Shard) -> LabelInputs:
        """The four input tables, lazily restricted to the shard's problems (this stage runs in
        the driver's process, so the scans run inside ``build_labels``).

        A shard's problems are a run of the rollouts' sorted problem ids, so the closed range from
        first to last selects exactly its roll-outs and verdicts (rows of other tables in the range
        join nothing). A range, unlike ``is_in``, reaches the Parquet statistics: row groups
        outside it are skipped instead of decoded once per shard."""
        problem_ids, _ = shard.payload
        first, last = problem_ids[0], problem_ids[-1]
        in_shard = pl.col("problem_id").is_between(pl.lit(first), pl.lit(last))
        return LabelInputs(**{t: r.scan().filter(in_shard) for t, r in self.inputs.items()})

    def process(self, shard: Shard, inputs: LabelInputs) -> ShardResult:
        _, val_fraction = shard.payload
        rows, counts = build_labels(
            inputs,
            val_fraction=val_fraction,
            problem_splits=list(self.config.problem_splits),
            drop_all_failed=self.config.drop_all_failed,
        )
        return ShardResult(rows.to_arrow(), counts)

    @staticmethod
    def summary(report: dict) -> dict:
        """Labelled roll-outs and their tokens."""
        return {
            SummaryKey.ROWS: report["rows"],
            SummaryKey.TOKENS: report["stats"].get(LabelCount.TOKENS, 0),
        }
