"""The cleaning rules: each drops what it should, with its reason, and nothing else."""

import polars as pl
import pytest

from tracefactory.problems.clean import (
    DropReason,
    answer_parses,
    normalize_text,
    problem_id,
    text_drop_reason,
)
from tracefactory.problems.config import CleaningConfig


def reasons(rows: list[tuple[str, str]], config: CleaningConfig | None = None) -> list:
    frame = pl.DataFrame(rows, schema={"problem": pl.String, "answer": pl.String}, orient="row")
    return frame.select(text_drop_reason(config or CleaningConfig()))["drop_reason"].to_list()


@pytest.mark.parametrize(
    ("problem", "answer", "reason"),
    [
        ("   ", "3", DropReason.EMPTY_PROBLEM),
        ("x" * 5000, "3", DropReason.PROBLEM_TOO_LONG),
        ("See https://example.com/p.pdf and find $x$.", "3", DropReason.LINK),
        ("![](https://cdn.mathpix.com/cropped/1.jpg) Find the area.", "3", DropReason.LINK),
        ("Find the shaded area. <img src='a'>", "3", DropReason.IMAGE),
        ("What is $1+1$? (A) 1 (B) 2 (C) 3 (D) 4", "2", DropReason.MULTIPLE_CHOICE),
        ("What is $1+1$?\nA. 1\nB. 2\nC. 3", "2", DropReason.MULTIPLE_CHOICE),
        ("Which option is right?", "(B)", DropReason.MULTIPLE_CHOICE),
        ("Which option is right?", "\\textbf{(C)}", DropReason.MULTIPLE_CHOICE),
        ("(a) Find $x$. (b) Find $y$.", "3", DropReason.MULTI_PART),
        ("Solve:\n1. $x+1=2$\n2. $y+1=3$", "1", DropReason.MULTI_PART),
        ("Find $x$.", "  ", DropReason.EMPTY_ANSWER),
        ("Find $x$ and $y$.", "x=1; y=2", DropReason.MULTIPLE_ANSWERS),
        ("Find both roots.", "1 \\text{ and } 2", DropReason.MULTIPLE_ANSWERS),
        ("Prove that $x>0$.", "proof", DropReason.PROSE_ANSWER),
        ("Is it even or odd?", "\\text{odd}", DropReason.PROSE_ANSWER),
    ],
)
def test_rule_drops_with_its_reason(problem, answer, reason):
    assert reasons([(problem, answer)]) == [str(reason)]


@pytest.mark.parametrize(
    ("problem", "answer"),
    [
        ("Find the number of minutes the walk takes her.", "204"),
        ("Convert $(0,3)$ to polar coordinates.", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("Compute all real roots.", "1, -2"),
        ("Let $A$ be a point (a vertex of the triangle). Find $x$.", "\\frac{5}{13}"),
        ("Find $y$ as a function of $x$.", "y=2x+1"),
        ("Compute $e^{i\\pi}$.", "-1"),
        ("Find $AC$. [asy]\ndot(A);\ndot(B);\ndot(C);\ndot(D);\n[/asy]", "15"),
    ],
)
def test_ordinary_problems_pass_every_rule(problem, answer):
    assert reasons([(problem, answer)]) == [None]


def test_disabled_rules_do_not_drop():
    config = CleaningConfig(
        drop_multiple_choice=False, drop_prose_answers=False, max_problem_chars=None
    )
    rows = [("Which? (A) 1 (B) 2 (C) 3", "2"), ("Prove it.", "proof"), ("y" * 9000, "1")]
    assert reasons(rows, config) == [None, None, None]


def test_multi_question_rule_is_opt_in():
    rows = [("What is $x$? What is $y$?", "3")]
    assert reasons(rows) == [None]
    assert reasons(rows, CleaningConfig(max_question_marks=1)) == [str(DropReason.MULTI_QUESTION)]


def test_answer_parse_check_uses_math_verify():
    assert answer_parses("\\frac{1}{2}", timeout_s=5)
    assert answer_parses("$204$", timeout_s=5)
    assert not answer_parses("\\frac{", timeout_s=5)


def test_problem_id_ignores_case_spacing_and_dollars():
    a = "Find  $x$ if $x+1=2$.\n"
    b = "find x if x+1=2."
    assert normalize_text(a) == normalize_text(b) == "find x if x+1=2."
    assert problem_id(a) == problem_id(b)
    assert len(problem_id(a)) == 16 and problem_id(a) != problem_id("find y if y+1=2.")
