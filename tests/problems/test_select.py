"""Selection end to end on frames, and deterministic splits by problem id."""

import polars as pl
import pytest

from tracefactory.errors import ConfigError
from tracefactory.problems.config import ProblemsConfig, SourceConfig, SplitConfig
from tracefactory.problems.select import assign_splits, select_problems
from tracefactory.problems.sources import SOURCE_SCHEMA, load_sources

NO_BENCHMARKS = pl.DataFrame(
    schema={"benchmark": pl.String, "benchmark_row": pl.Int64, "problem": pl.String}
)


def frame(n: int, fixed: str | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "key": list(range(n)),
            "source": ["s"] * n,
            "problem_id": [f"{i * 7919 % 1000:016x}" for i in range(n)],
            "fixed_split": [fixed] * n,
        },
        schema_overrides={"fixed_split": pl.String},
    )


def test_split_counts_are_exact_and_deterministic():
    split = assign_splits(frame(100), SplitConfig(val=10, test=5))
    counts = dict(split.group_by("split").len().iter_rows())
    assert counts == {"train": 85, "val": 10, "test": 5}
    again = assign_splits(
        frame(100).sample(fraction=1.0, shuffle=True, seed=3), SplitConfig(val=10, test=5)
    )
    assert dict(again.select("problem_id", "split").iter_rows()) == dict(
        split.select("problem_id", "split").iter_rows()
    )


def test_split_fractions_and_fixed_splits():
    mixed = pl.concat([frame(40), frame(5, "test").with_columns(pl.col("key") + 100)])
    split = assign_splits(mixed, SplitConfig(val=0.25, test=0.0))
    counts = dict(split.group_by("split").len().iter_rows())
    assert counts == {"train": 30, "val": 10, "test": 5}


def test_split_rejects_too_many_and_unknown_fixed_split():
    with pytest.raises(ConfigError, match="only 10 problems"):
        assign_splits(frame(10), SplitConfig(val=8, test=8))
    with pytest.raises(ConfigError, match="policy"):
        assign_splits(frame(3, "policy"), SplitConfig())


def test_every_row_is_kept_or_dropped_with_one_reason():
    rows = pl.DataFrame(
        {
            "source": ["a"] * 5,
            "row": list(range(5)),
            "problem": ["Find $x$ if $2x=4$.", "find x if 2x=4.", "", "Prove it.", "Find y."],
            "answer": ["2", "2", "1", "proof", "\\frac{"],
            "fixed_split": [None] * 5,
        },
        schema=SOURCE_SCHEMA,
    )
    config = ProblemsConfig(
        sources=[SourceConfig(name="a", path="x.jsonl")], split=SplitConfig(val=0, test=0)
    )
    selection = select_problems(rows, config, NO_BENCHMARKS)
    assert selection.kept["problem"].to_list() == ["Find $x$ if $2x=4$."]
    assert dict(selection.dropped.select("row", "reason").iter_rows()) == {
        1: "duplicate",
        2: "empty_problem",
        3: "prose_answer",
        4: "unparseable_answer",
    }
    assert "a:0" in selection.dropped.filter(pl.col("row") == 1)["detail"][0]


def test_synthetic_source_keeps_its_splits():
    source = SourceConfig(name="toy", type="synthetic", counts={"train": 6, "test": 3})
    rows = load_sources([source], seed=7)
    assert rows["fixed_split"].to_list() == ["train"] * 6 + ["test"] * 3
    assert rows["problem"].to_list() == load_sources([source], seed=7)["problem"].to_list()
    assert all(a.isdigit() for a in rows["answer"].to_list())
