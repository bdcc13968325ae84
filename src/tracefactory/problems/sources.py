"""Load problem sources into polars frames.

A dataset source is a local file or a Hub dataset id, read by ``tracefactory.io.read_dataset``;
the synthetic source calls the toy world's generator. Every source becomes the same frame:
``source, row, problem, answer, fixed_split``.
"""

from __future__ import annotations

import logging

import polars as pl

from tracefactory.io import read_dataset
from tracefactory.problems.config import SourceConfig, SourceType

logger = logging.getLogger(__name__)

SOURCE_SCHEMA = {
    "source": pl.String,
    "row": pl.Int64,  # position in the source, for the drop log
    "problem": pl.String,
    "answer": pl.String,
    "fixed_split": pl.String,  # train/val/test given by the source, or null (split by id)
}


def _as_text(values: list) -> list[str | None]:
    """Cell values as strings: answers are often stored as numbers (AIME's ``204``)."""
    return [None if v is None else str(v) for v in values]


def load_source(source: SourceConfig, seed: int) -> pl.DataFrame:
    """All rows of one configured source, in the common frame (see the module docstring)."""
    if source.type is SourceType.SYNTHETIC:
        return _load_synthetic(source, seed)
    mapping = source.columns
    wanted = [mapping.problem, mapping.answer] + ([mapping.split] if mapping.split else [])
    dataset = read_dataset(source.path, source.subset, source.split, wanted, source.limit)
    height = len(dataset)
    fixed = _as_text(dataset[mapping.split]) if mapping.split else [None] * height
    frame = pl.DataFrame(
        {
            "source": [source.name] * height,
            "row": list(range(height)),
            "problem": _as_text(dataset[mapping.problem]),
            "answer": _as_text(dataset[mapping.answer]),
            "fixed_split": fixed,
        },
        schema=SOURCE_SCHEMA,
    )
    logger.info("source %s: %d rows from %s", source.name, height, source.path)
    warn_if_columns_swapped(frame, source)
    return frame


def warn_if_columns_swapped(frame: pl.DataFrame, source: SourceConfig) -> bool:
    """Warn when most answers are longer than their problems: the columns are likely swapped.

    Gold answers are short (a number, an expression) and problems are sentences; a source whose
    mapping is the wrong way round would otherwise run the whole pipeline on answers as prompts.
    A warning, not an error: some sources hold a few long answers for short problems.

    Returns:
        True when it warned.
    """
    if frame.is_empty():
        return False
    share = frame.select(
        (pl.col("answer").str.len_chars() > pl.col("problem").str.len_chars()).mean()
    ).item()
    if share is None or share <= 0.5:
        return False
    logger.warning(
        "source %s: the answer (column %r) is longer than the problem (column %r) in %.0f%% of "
        "rows; are the two swapped? Fix with columns: {problem: ..., answer: ...} in its config",
        source.name,
        source.columns.answer,
        source.columns.problem,
        100 * share,
    )
    return True


def _load_synthetic(source: SourceConfig, seed: int) -> pl.DataFrame:
    from tracefactory.toyworld.task import generate_problems

    rows = []
    for split, count in source.counts.items():
        if count:
            rows += generate_problems(seed, count, split, source.task)
    if source.limit is not None:
        rows = rows[: source.limit]
    logger.info("source %s: %d synthetic rows", source.name, len(rows))
    return pl.DataFrame(
        {
            "source": [source.name] * len(rows),
            "row": list(range(len(rows))),
            "problem": [r["problem"] for r in rows],
            "answer": [r["answer"] for r in rows],
            "fixed_split": [r["split"] for r in rows],
        },
        schema=SOURCE_SCHEMA,
    )


def load_sources(sources: list[SourceConfig], seed: int) -> pl.DataFrame:
    """Every source's rows, concatenated in configuration order."""
    return pl.concat([load_source(s, seed) for s in sources], how="vertical")
