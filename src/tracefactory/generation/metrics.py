"""The metrics a generation stage leaves in ``reports/<stage>/metrics.json``."""

from __future__ import annotations

import polars as pl

from tracefactory.io import TableReader
from tracefactory.schemas import FinishReason
from tracefactory.stage import StageSummary


def generation_metrics(summary: StageSummary, table_dir: str) -> dict:
    """Shard counts, row counts and token statistics of a finished rollins/rollouts table."""
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
        "shards_planned": summary.shards_planned,
        "shards_skipped": summary.shards_skipped,
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in stats.items()},
        **summary.stats,
    }
