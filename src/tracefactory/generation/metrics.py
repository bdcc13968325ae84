"""What the generation stages (rollin, rollout) count and report."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import polars as pl

from tracefactory.io import TableReader
from tracefactory.schemas import FinishReason
from tracefactory.stage import StageRun
from tracefactory.summaries import SummaryKey


class GenerationCount(StrEnum):
    """Counters of a generation stage's shards."""

    SAMPLES = "samples"  # rows generated
    TOKENS = "tokens"  # generated tokens
    FAILED = "failed_"  # ``failed_<reason>``: samples the engine could not generate
    DROPPED_ROLLIN_TOO_SHORT = "dropped_rollin_too_short"  # roll-ins with nothing to cut (rollout)


def generation_report(run: StageRun, table_dir: str | Path) -> dict:
    """Shard count, row count, token statistics and counters of a finished rollins/rollouts
    table."""
    stats = (
        TableReader(table_dir)
        .scan()
        .select(
            pl.len().alias("rows"),
            pl.col("token_ids").list.len().mean().alias("mean_generated_tokens"),
            pl.col("token_ids").list.len().max().alias("max_generated_tokens"),
            (pl.col("finish_reason") == FinishReason.LENGTH.value)
            .mean()
            .alias("length_capped_fraction"),
        )
        .collect()
        .row(0, named=True)
    )
    return {
        "shards_planned": run.shards_planned,
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in stats.items()},
        **run.stats,
    }


def generation_summary(report: dict) -> dict:
    """Samples generated and their tokens (roll-ins or roll-outs)."""
    return {
        SummaryKey.ROWS: report["rows"],
        SummaryKey.TOKENS: report.get(GenerationCount.TOKENS, 0),
    }
