"""All of the problems stage's decisions, in order, on in-memory frames (no files, no Ray).

Order: text rules (cheap) -> exact duplicates -> near duplicates -> decontamination -> gold-answer
parse (math-verify, the slow rule, so it only sees survivors). A row gets the reason of the first
rule that drops it. Kept rows get a problem id and a deterministic split.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tracefactory.errors import ConfigError
from tracefactory.problems.clean import (
    DropReason,
    problem_id,
    text_drop_reason,
    unparseable_reasons,
)
from tracefactory.problems.config import SPLITS, ProblemsConfig, SplitConfig
from tracefactory.problems.decontaminate import benchmark_index, find_contamination
from tracefactory.problems.dedupe import exact_duplicates, near_duplicates

_PREVIEW_CHARS = 200
DROPPED_SCHEMA = {
    "source": pl.String,
    "row": pl.Int64,
    "problem_id": pl.String,
    "reason": pl.String,
    "detail": pl.String,  # what matched: the kept copy, the benchmark problem and n-gram, ...
    "benchmark": pl.String,  # contaminated rows: the benchmark matched
    "problem": pl.String,  # the first characters of the problem, for reading the log
}


@dataclass
class Selection:
    """The outcome: kept problems (the table's rows) and every dropped row with its reason."""

    kept: pl.DataFrame  # problem_id, source, problem, answer, split
    dropped: pl.DataFrame  # DROPPED_SCHEMA
    loaded: dict[str, int]  # rows read per source


def _drops(
    frame: pl.DataFrame, reason: pl.Expr, detail: pl.Expr, benchmark: pl.Expr
) -> pl.DataFrame:
    return frame.select(
        "source",
        "row",
        "problem_id",
        reason.alias("reason"),
        detail.alias("detail"),
        benchmark.alias("benchmark"),
        pl.col("problem").str.slice(0, _PREVIEW_CHARS).alias("problem"),
    ).cast(DROPPED_SCHEMA)


def _label(frame: pl.DataFrame) -> pl.DataFrame:
    """``key -> "source:row (id)"`` for naming the kept copy of a duplicate."""
    text = pl.format("{}:{} ({})", "source", "row", "problem_id")
    return frame.select(pl.col("key").alias("duplicate_of"), text.alias("label"))


def _without(frame: pl.DataFrame, drops: pl.DataFrame) -> pl.DataFrame:
    return frame.join(drops.select("key"), on="key", how="anti")


def _drop_duplicates(frame: pl.DataFrame, config: ProblemsConfig) -> tuple[pl.DataFrame, list]:
    """Survivors of exact and near dedupe, and the drop records of both."""
    records = []
    if config.dedupe.exact:
        dups = exact_duplicates(frame["key"], frame["problem_id"]).join(
            _label(frame), on="duplicate_of"
        )
        matched = frame.join(dups, on="key")
        detail = pl.concat_str(pl.lit("same text as "), pl.col("label"))
        records.append(_drops(matched, pl.lit(str(DropReason.DUPLICATE)), detail, pl.lit(None)))
        frame = _without(frame, dups)
    if config.dedupe.near:
        near = near_duplicates(
            frame.select("key", "problem"),
            config.dedupe.near_threshold,
            config.dedupe.shingle_words,
        ).join(_label(frame), on="duplicate_of")
        matched = frame.join(near, on="key")
        detail = pl.format("similarity {} to {}", pl.col("similarity").round(3), pl.col("label"))
        records.append(
            _drops(matched, pl.lit(str(DropReason.NEAR_DUPLICATE)), detail, pl.lit(None))
        )
        frame = _without(frame, near)
    return frame, records


def _drop_contaminated(
    frame: pl.DataFrame, config: ProblemsConfig, benchmarks: pl.DataFrame
) -> tuple[pl.DataFrame, list]:
    n, tokens = config.decontamination.ngram, config.decontamination.tokens
    if benchmarks.height == 0:
        return frame, []
    hits = find_contamination(frame, benchmark_index(benchmarks, n, tokens), n, tokens)
    matched = frame.join(hits, on="key")
    detail = pl.format(
        "{} row {} shares {}-gram '{}'", "benchmark", "benchmark_row", pl.lit(n), "gram"
    )
    record = _drops(matched, pl.lit(str(DropReason.CONTAMINATED)), detail, pl.col("benchmark"))
    return _without(frame, hits), [record]


def _drop_unparseable(frame: pl.DataFrame, config: ProblemsConfig) -> tuple[pl.DataFrame, list]:
    if not config.cleaning.check_answer_parses or frame.height == 0:
        return frame, []
    reasons = unparseable_reasons(frame["answer"].to_list(), config.cleaning.parse_timeout_s)
    frame = frame.with_columns(pl.Series("drop_reason", reasons, dtype=pl.String))
    bad = frame.filter(pl.col("drop_reason").is_not_null())
    detail = pl.concat_str(
        pl.lit("math-verify cannot parse answer "), pl.col("answer").str.slice(0, 80)
    )
    record = _drops(bad, pl.col("drop_reason"), detail, pl.lit(None))
    return frame.filter(pl.col("drop_reason").is_null()).drop("drop_reason"), [record]


def select_problems(
    rows: pl.DataFrame, config: ProblemsConfig, benchmarks: pl.DataFrame
) -> Selection:
    """Apply every rule to ``rows`` (``sources.load_sources``) and split what survives.

    Args:
        rows: ``source, row, problem, answer, fixed_split`` in priority order.
        config: the problems section.
        benchmarks: ``benchmark, benchmark_row, problem`` to decontaminate against (may be empty).

    Returns:
        The `Selection`; every input row is either kept or in ``dropped`` with one reason.
    """
    ids = [problem_id(text or "") for text in rows["problem"].to_list()]
    frame = rows.with_row_index("key").with_columns(pl.Series("problem_id", ids, dtype=pl.String))
    frame = frame.with_columns(text_drop_reason(config.cleaning))
    failed = frame.filter(pl.col("drop_reason").is_not_null())
    rule_detail = pl.lit("rule ") + pl.col("drop_reason")
    records = [_drops(failed, pl.col("drop_reason"), rule_detail, pl.lit(None))]
    frame = frame.filter(pl.col("drop_reason").is_null()).drop("drop_reason")
    frame, found = _drop_duplicates(frame, config)
    records += found
    frame, found = _drop_contaminated(frame, config, benchmarks)
    records += found
    frame, found = _drop_unparseable(frame, config)
    records += found
    kept = assign_splits(frame, config.split).select(
        "problem_id", "source", "problem", "answer", "split"
    )
    loaded = dict(rows.group_by("source").len().iter_rows())
    dropped = pl.concat(records, how="vertical").sort("source", "row")
    return Selection(kept=kept, dropped=dropped, loaded=loaded)


def _size(value: float, available: int) -> int:
    return int(value) if value >= 1 else round(value * available)


def assign_splits(frame: pl.DataFrame, config: SplitConfig) -> pl.DataFrame:
    """Add ``split``: the source's fixed split if it has one, else one chosen by problem id.

    Ids are sha256 prefixes, so ordering by id is a uniform shuffle that depends only on the
    problems themselves: the first ``test`` ids (a count, or a fraction of the unsplit problems)
    are test, the next ``val`` are val, the rest train.

    Raises:
        ConfigError: a source gave a split that is not train/val/test, or counts exceed the rows.
    """
    bad = frame.filter(pl.col("fixed_split").is_not_null() & ~pl.col("fixed_split").is_in(SPLITS))
    if bad.height:
        value, source = bad.row(0, named=True)["fixed_split"], bad.row(0, named=True)["source"]
        raise ConfigError(f"source {source!r} gives split {value!r}; allowed: {list(SPLITS)}")
    free = frame.filter(pl.col("fixed_split").is_null()).sort("problem_id")
    n_test, n_val = _size(config.test, free.height), _size(config.val, free.height)
    if n_test + n_val > free.height:
        raise ConfigError(
            f"split asks for test={n_test} + val={n_val} problems but only {free.height} "
            f"problems are split by id"
        )
    rank = pl.int_range(pl.len())
    chosen = free.with_columns(
        pl.when(rank < n_test)
        .then(pl.lit("test"))
        .when(rank < n_test + n_val)
        .then(pl.lit("val"))
        .otherwise(pl.lit("train"))
        .alias("split")
    )
    fixed = frame.filter(pl.col("fixed_split").is_not_null()).with_columns(
        pl.col("fixed_split").alias("split")
    )
    return pl.concat([fixed, chosen], how="vertical").sort("key")
