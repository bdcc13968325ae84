"""Loading a local problems source: a mapping whose columns look swapped is warned about."""

import json
import logging

from tracefactory.problems.config import SourceConfig
from tracefactory.problems.sources import load_source

ROWS = [
    {"question": "What is the remainder when 2^10 is divided by 7?", "solution": "2"},
    {"question": "How many primes are smaller than 30?", "solution": "10"},
    {"question": "Compute the sum 1+2+...+100.", "solution": "5050"},
]


def _source(tmp_path, problem: str, answer: str) -> SourceConfig:
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return SourceConfig(
        name="local", path=str(path), columns={"problem": problem, "answer": answer}
    )


def test_swapped_problem_and_answer_columns_are_warned_about(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="tracefactory.problems.sources"):
        frame = load_source(_source(tmp_path, problem="solution", answer="question"), seed=0)
    assert frame.height == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "source local" in warnings[0] and "swapped" in warnings[0]
    assert "'question'" in warnings[0] and "'solution'" in warnings[0]


def test_a_correct_mapping_loads_without_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="tracefactory.problems.sources"):
        load_source(_source(tmp_path, problem="question", answer="solution"), seed=0)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
