"""The problems stage on the benchmark files plus planted duplicates and contaminated items.

Sources: MATH-500 and HMMT Feb 2024 (then a planted file); decontamination against AIME 2024,
AIME 2025 and HMMT Feb 2025. The benchmark sources have drops of their own (a few multiple-choice
items, 8-gram boilerplate shared with AIME), so the test runs the stage with and without the
planted file: adding it must drop exactly the planted items, each with its reason.
"""

import json
from pathlib import Path

import polars as pl
import pytest
from locations import BENCHMARKS, needs_shared_file
from typer.testing import CliRunner

from tracefactory.cli import app
from tracefactory.io import TableReader
from tracefactory.params import load_params

pytestmark = [
    pytest.mark.integration,
    needs_shared_file(BENCHMARKS / "math500.jsonl"),
]

ORIGINAL = (
    "A bag holds 4 red, 5 blue and 6 green marbles. Two marbles are drawn at random without "
    "replacement. What is the probability that both marbles have the same colour?"
)


def benchmark_problem(name: str, row: int) -> str:
    lines = (BENCHMARKS / f"{name}.jsonl").read_text().splitlines()
    return json.loads(lines[row])["problem"]


def middle_tokens(text: str, n: int) -> str:
    tokens = text.split()
    start = max(0, len(tokens) // 2 - n // 2)
    return " ".join(tokens[start : start + n])


def planted_items() -> tuple[list[dict], dict[int, tuple[str, str | None]]]:
    """Rows of the planted file, and the expected (reason, benchmark) of each dropped row."""
    math500_copy = "  " + benchmark_problem("math500", 10).replace(" ", "  ") + "\n"
    rows = [
        {"problem": ORIGINAL, "answer": "\\frac{31}{105}"},
        {"problem": ORIGINAL.upper().replace(" ", "   "), "answer": "\\frac{31}{105}"},
        {"problem": ORIGINAL.replace("6 green", "7 green"), "answer": "x"},
        {"problem": math500_copy, "answer": "1"},
    ]
    expected = {1: ("duplicate", None), 2: ("near_duplicate", None), 3: ("duplicate", None)}
    for benchmark, row in (("aime24", 0), ("aime25", 5), ("hmmt_feb25", 3)):
        grams = middle_tokens(benchmark_problem(benchmark, row), 8)
        text = f"Our club read this: {grams} Now compute $17 \\cdot 3$."
        expected[len(rows)] = ("contaminated", benchmark)
        rows.append({"problem": text, "answer": "51"})
    control = middle_tokens(benchmark_problem("aime25", 5), 7)  # a 7-gram is not contamination
    rows.append({"problem": f"We saw: {control} zebra. Compute $6 \\cdot 7$.", "answer": "42"})
    return rows, expected


def write_params(tmp_path: Path, with_planted: bool) -> Path:
    planted = tmp_path / "planted.jsonl"
    sources = [
        {"name": "math500", "path": str(BENCHMARKS / "math500.jsonl")},
        {"name": "hmmt_feb24", "path": str(BENCHMARKS / "hmmt_feb24.jsonl")},
    ]
    if with_planted:
        sources.append({"name": "planted", "path": str(planted)})
    benchmarks = [
        {"name": name, "path": str(BENCHMARKS / f"{name}.jsonl")}
        for name in ("aime24", "aime25", "hmmt_feb25")
    ]
    tag = "with" if with_planted else "without"
    params = {
        "seed": 3,
        "problems": {
            "output_dir": str(tmp_path / tag / "data"),
            "sources": sources,
            "dedupe": {"near": True, "near_threshold": 0.7, "shingle_words": 3},
            "decontamination": {"benchmarks": benchmarks},
            "split": {"val": 50, "test": 0.1},
        },
    }
    path = tmp_path / f"params-{tag}.yaml"
    path.write_text(json.dumps(params))
    return path


def run_cli(params: Path, reports: Path) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    result = CliRunner().invoke(
        app, ["problems", "--params", str(params), "--reports", str(reports)]
    )
    assert result.exit_code == 0, result.output
    output_dir = load_params(params).problems.output_dir
    table = pl.from_arrow(TableReader(output_dir).read())
    metrics = json.loads((reports / "metrics.json").read_text())
    return metrics, table, pl.read_json(reports / "dropped.json")


def test_planted_duplicates_and_contaminated_items_are_exactly_what_is_removed(tmp_path):
    rows, expected = planted_items()
    (tmp_path / "planted.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    base_metrics, base_table, base_dropped = run_cli(
        write_params(tmp_path, False), tmp_path / "without" / "reports"
    )
    metrics, table, dropped = run_cli(write_params(tmp_path, True), tmp_path / "with" / "reports")

    planted_kept = {r["problem"] for i, r in enumerate(rows) if i not in expected}
    assert set(table["problem"]) == set(base_table["problem"]) | planted_kept
    assert len(table) == table["problem_id"].n_unique()
    new_drops = dropped.join(base_dropped, on=["source", "row"], how="anti")
    assert set(new_drops["source"]) == {"planted"}
    found = {r["row"]: (r["reason"], r["benchmark"]) for r in new_drops.iter_rows(named=True)}
    assert found == expected
    details = dict(new_drops.select("row", "detail").iter_rows())
    assert "math500:10" in details[3] and "planted:0" in details[1] and "planted:0" in details[2]

    assert metrics["sources"]["planted"] == {
        "loaded": len(rows),
        "kept": len(planted_kept),
        "dropped": len(expected),
    }
    assert metrics["contamination"] == {
        name: base_metrics["contamination"][name] + 1 for name in ("aime24", "aime25", "hmmt_feb25")
    }
    assert metrics["dropped"]["duplicate"] == base_metrics["dropped"]["duplicate"] + 2
    assert metrics["dropped"]["near_duplicate"] == base_metrics["dropped"]["near_duplicate"] + 1
    assert sum(metrics["splits"].values()) == metrics["problems"] == len(table)
    assert metrics["splits"]["val"] == 50
