"""Load problem sources and benchmarks into polars frames through `datasets`.

A dataset reference is either a local file (``.jsonl``/``.json``/``.parquet``/``.csv``, globs
allowed) read with ``load_dataset(<format>, data_files=...)``, or a Hub dataset id read with
``load_dataset(id, subset, split=...)``. The synthetic source calls the toy world's generator.
Every source becomes the same frame: ``source, row, problem, answer, fixed_split``.
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path

import polars as pl

from tracefactory.errors import ConfigError
from tracefactory.problems.config import BenchmarkConfig, SourceConfig, SourceType

logger = logging.getLogger(__name__)

_LOCAL_FORMATS = {
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}
SOURCE_SCHEMA = {
    "source": pl.String,
    "row": pl.Int64,  # position in the source, for the drop log
    "problem": pl.String,
    "answer": pl.String,
    "fixed_split": pl.String,  # train/val/test given by the source, or null (split by id)
}


def _local_format(path: str) -> str | None:
    """The `datasets` builder for a local path, or None if ``path`` is not a local file."""
    for suffix, builder in _LOCAL_FORMATS.items():
        if path.endswith(suffix) and (Path(path).is_file() or glob.glob(path)):
            return builder
    if Path(path).exists():
        raise ConfigError(
            f"{path}: unsupported local file type; use one of {sorted(_LOCAL_FORMATS)}"
        )
    return None


def load_dataset_rows(
    path: str, subset: str | None, split: str, columns: list[str], limit: int | None = None
):
    """Read ``columns`` of a local file or Hub dataset as a `datasets.Dataset`.

    Raises:
        ConfigError: the dataset cannot be loaded, or lacks one of ``columns`` (naming the
            columns it has).
    """
    import datasets

    builder = _local_format(path)
    try:
        if builder is not None:
            dataset = datasets.load_dataset(builder, data_files={split: path}, split=split)
        else:
            dataset = datasets.load_dataset(path, subset, split=split)
    except Exception as e:  # datasets raises many types (FileNotFound, Hub, builder errors)
        where = "local file" if builder else "Hub dataset (or a local path that does not exist)"
        raise ConfigError(f"cannot load {where} {path!r} (split {split!r}): {e}") from e
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise ConfigError(
            f"dataset {path!r} has no column(s) {missing}; its columns are {dataset.column_names}"
        )
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    return dataset.select_columns(columns)


def _as_text(values: list) -> list[str | None]:
    """Cell values as strings: answers are often stored as numbers (AIME's ``204``)."""
    return [None if v is None else str(v) for v in values]


def load_source(source: SourceConfig, seed: int) -> pl.DataFrame:
    """All rows of one configured source, in the common frame (see the module docstring)."""
    if source.type is SourceType.SYNTHETIC:
        return _load_synthetic(source, seed)
    mapping = source.columns
    wanted = [mapping.problem, mapping.answer] + ([mapping.split] if mapping.split else [])
    dataset = load_dataset_rows(source.path, source.subset, source.split, wanted, source.limit)
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
    return frame


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


def load_benchmark(benchmark: BenchmarkConfig) -> pl.DataFrame:
    """A benchmark's problems as ``benchmark, benchmark_row, problem``."""
    dataset = load_dataset_rows(
        benchmark.path, benchmark.subset, benchmark.split, [benchmark.problem_column]
    )
    problems = _as_text(dataset[benchmark.problem_column])
    return pl.DataFrame(
        {
            "benchmark": [benchmark.name] * len(problems),
            "benchmark_row": list(range(len(problems))),
            "problem": problems,
        },
        schema={"benchmark": pl.String, "benchmark_row": pl.Int64, "problem": pl.String},
    )
