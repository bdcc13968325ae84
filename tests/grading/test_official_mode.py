"""``grader.mode: official`` against the verdicts of the paper's own grading functions.

official_verdicts.jsonl holds 432 (gold, response) pairs of ours (the equivalence and extraction
cases of this folder, as responses) with the verdicts that the release's functions gave when run
once on them (each row names its source: kaiwenw/value-guided-search@848b3db,
``deepseek_utils.remove_thinking_text``, then ``accuracy_utils.process_sample`` and
``math_verify_check``), under two environments: math-verify 0.9.0 with sympy 1.14.0 (ours) and
math-verify 0.7.0 with sympy 1.13.1 (the release's requirements.txt). The two differ on 35 pairs
(how math-verify reads percents, text wrappers, long decimals), so the test checks the recorded
column of the installed math-verify version.
"""

import io
import json
from importlib.metadata import version
from pathlib import Path

import pytest

from tracefactory.grading import Grader, GraderConfig, Reason
from tracefactory.grading.cli import grade_cli
from tracefactory.schemas import TrajectoryClass

FIXTURE = Path(__file__).with_name("official_verdicts.jsonl")
ROWS = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
MATH_VERIFY = version("math-verify")


@pytest.mark.skipif(
    MATH_VERIFY not in ROWS[0]["correct"],
    reason=f"no official verdicts recorded for math-verify {MATH_VERIFY}",
)
def test_official_mode_gives_the_release_verdicts_and_answers():
    with Grader(GraderConfig(mode="official", workers=2, timeout_s=20.0)) as grader:
        verdicts = grader.grade_many(
            [(row["response"], row["gold"]) for row in ROWS],
            truncated=[row["truncated"] for row in ROWS],
        )
    got = [(v.label is TrajectoryClass.CORRECT, v.answer or "") for v in verdicts]
    expected = [(row["correct"][MATH_VERIFY], row["answer"]) for row in ROWS]
    differing = [row["response"] for row, g, e in zip(ROWS, got, expected, strict=True) if g != e]
    assert not differing
    assert {v.reason for v in verdicts} == {Reason.MATCH, Reason.MISMATCH, Reason.NO_BOXED}


def test_official_mode_grades_truncated_and_unclosed_thinking_like_any_response(
    tmp_path: Path,
):
    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {"gold": "16", "response": r"<think> still thinking \boxed{16}", "truncated": True},
        {"gold": "x + y = 1", "response": r"</think> \boxed{1}"},  # its equation false positive
        {"gold": "3", "response": r"</think> \boxed{1 \boxed{3}}"},  # a hedge it credits
        {"gold": "3", "response": r"</think> \boxed{3} \boxed{4"},  # the last box, unclosed
    ]
    pairs.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = io.StringIO()
    assert grade_cli(None, None, pairs, output=output, mode="official") == 4
    assert [json.loads(line) for line in output.getvalue().splitlines()] == [
        {"label": 1, "reason": "match", "answer": "16"},
        {"label": 1, "reason": "match", "answer": "1"},
        {"label": 1, "reason": "match", "answer": "3"},  # the last \boxed{ is the inner one
        {"label": 0, "reason": "no_boxed", "answer": None},
    ]
