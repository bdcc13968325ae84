"""n-gram decontamination: drop a problem that shares any word n-gram with an evaluation benchmark.

The paper (arXiv 2505.17373, section 3) decontaminated its training problems with 8-grams against
the evaluation benchmarks. Tokens are, by default, the lower-cased text split on whitespace (as in
open-r1's and s1's decontamination scripts); ``words`` mode uses alphanumeric runs instead, so LaTeX
markup (``$``, ``\\frac``'s braces) cannot hide an overlap, at the price of more boilerplate hits.
The index is a polars table of (n-gram, benchmark, benchmark row); a join finds each problem's
first overlapping n-gram, so the report can say which benchmark (and which problem) it matched.
"""

from __future__ import annotations

import logging

import polars as pl

logger = logging.getLogger(__name__)

_TOKEN_PATTERNS = {"whitespace": r"\S+", "words": r"[a-z0-9]+"}


def words(text: pl.Expr, tokens: str = "words") -> pl.Expr:
    """The token sequence n-grams are built from (a list column); ``tokens``: whitespace | words."""
    return text.str.normalize("NFKC").str.to_lowercase().str.extract_all(_TOKEN_PATTERNS[tokens])


def ngrams(frame: pl.DataFrame, key: str, n: int, tokens: str = "whitespace") -> pl.DataFrame:
    """Every word n-gram of ``frame['problem']`` as rows ``key, position, gram``.

    Texts shorter than ``n`` tokens contribute no n-gram (they cannot share one).
    """
    exploded = (
        frame.select(pl.col(key), words(pl.col("problem"), tokens).alias("word"))
        .explode("word")
        .drop_nulls("word")
        .with_columns(pl.int_range(pl.len()).over(key).alias("position"))
    )
    shifted = [pl.col("word").shift(-k).over(key) for k in range(n)]
    return (
        exploded.with_columns(pl.concat_str(shifted, separator=" ").alias("gram"))
        .drop_nulls("gram")
        .select(key, "position", "gram")
    )


def benchmark_index(benchmarks: pl.DataFrame, n: int, tokens: str = "whitespace") -> pl.DataFrame:
    """n-gram index of benchmark problems: ``gram`` -> first (benchmark, benchmark_row) having it.

    Args:
        benchmarks: rows ``benchmark, benchmark_row, problem`` (``tracefactory.io.read_benchmark``).
        n: tokens per n-gram.
        tokens: ``whitespace`` or ``words`` (see the module docstring).
    """
    keyed = benchmarks.with_row_index("benchmark_key")
    grams = ngrams(keyed, "benchmark_key", n, tokens)
    index = (
        grams.join(keyed.drop("problem"), on="benchmark_key")
        .sort("benchmark_key", "position")
        .unique("gram", keep="first", maintain_order=True)
        .select("gram", "benchmark", "benchmark_row")
    )
    short = keyed.height - grams["benchmark_key"].n_unique() if grams.height else keyed.height
    if short:
        logger.warning("%d benchmark problem(s) have fewer than %d tokens: not indexed", short, n)
    return index


def find_contamination(
    problems: pl.DataFrame, index: pl.DataFrame, n: int, tokens: str = "whitespace"
) -> pl.DataFrame:
    """Problems sharing an n-gram with the index: ``key, benchmark, benchmark_row, gram``.

    Args:
        problems: rows with a unique ``key`` column and ``problem``.
        index: from `benchmark_index` with the same ``n``.
        n: tokens per n-gram.
        tokens: as for `benchmark_index`.

    Returns:
        One row per contaminated problem, naming its first overlapping n-gram (by position).
    """
    if index.height == 0 or problems.height == 0:
        return pl.DataFrame(
            schema={
                "key": problems.schema["key"],
                "benchmark": pl.String,
                "benchmark_row": pl.Int64,
                "gram": pl.String,
            }
        )
    return (
        ngrams(problems.select("key", "problem"), "key", n, tokens)
        .join(index, on="gram")
        .sort("key", "position")
        .unique("key", keep="first", maintain_order=True)
        .select("key", "benchmark", "benchmark_row", "gram")
    )
