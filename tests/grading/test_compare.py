"""Known math-verify failure modes, each handled on purpose (compare.py docstring), graded through
real worker processes."""

import pytest

from tracefactory.grading import Grader, Reason
from tracefactory.schemas import TrajectoryClass

MATCHES = [
    ("16", "016"),  # leading zeros (AIME answers)
    ("73", "**73**"),  # markdown bold inside the box
    ("13", r"\text{13}"),
    (r"3 \pm 2\sqrt{2}", r"3+2\sqrt{2}, 3-2\sqrt{2}"),  # \pm expands to both roots
    (r"3+2\sqrt{2}, 3-2\sqrt{2}", r"3 \pm 2\sqrt{2}"),
    ("38", r"38\%"),  # percent sign dropped
    ("864", r"864 \mbox{ inches}^2"),  # units
    ("864", r"864 \text{ inches}^2"),
    (r"(0,\infty)", "x>0"),  # interval vs inequality
    ("[1,2)", r"\left[1, 2\right)"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"\left(3,\ \frac{\pi}{2}\right)"),  # tuple
    ("3", "x=3"),  # equation vs value, both directions
    ("x=3", "3"),
    ("1,-2", "-2,1"),  # unordered roots
    (r"\frac{5}{13}", r"\frac{65}{169}"),
    ("1.87e6", r"1.87\times10^{6}"),  # E-notation is not Euler's number
    ("1e-8", r"10\times10^{-9}"),
    (r"\sqrt{4 \pi G}", r"v(r) = \sqrt{4\pi G}"),  # named-function prefix
    (r"\frac{1}{4-\omega^{2}}", r"A = \frac{1}{4 - \omega^2}, \quad \text{for } \omega^2 \neq 4"),
    (r"\text{Evelyn}", r"\text{Evelyn}"),
]

MISMATCHES = [
    ("0.38", r"38\%"),  # a percent is read as its number, not as a fraction
    ("5850", "58,500"),  # thousands separator: 58500
    ("[1,2)", "(1,2)"),  # open vs half-open interval
    ("6630", "6631.6"),  # no tolerance beyond float_rounding
    ("x+1", "y+1"),  # strict: variables matter
]


@pytest.mark.parametrize(("gold", "answer"), MATCHES)
def test_equivalent_answers_match(shared_grader: Grader, gold: str, answer: str):
    verdict = shared_grader.grade(rf"\boxed{{{answer}}}", gold)
    assert (verdict.label, verdict.reason, verdict.answer) == (
        TrajectoryClass.CORRECT,
        Reason.MATCH,
        answer,
    )


@pytest.mark.parametrize(("gold", "answer"), MISMATCHES)
def test_different_answers_mismatch(shared_grader: Grader, gold: str, answer: str):
    verdict = shared_grader.grade(rf"\boxed{{{answer}}}", gold)
    assert (verdict.label, verdict.reason) == (TrajectoryClass.WRONG, Reason.MISMATCH)


def test_unparseable_answer_is_finished_and_wrong(shared_grader: Grader):
    for answer in ["???", r"\frac{}{}", "@#"]:
        verdict = shared_grader.grade(rf"\boxed{{{answer}}}", "3")
        assert (verdict.label, verdict.reason) == (TrajectoryClass.WRONG, Reason.UNPARSEABLE), (
            answer
        )


def test_unboxed_bold_answer_is_not_credited(shared_grader: Grader):
    verdict = shared_grader.grade("The answer is **73**.", "73")
    assert (verdict.label, verdict.reason, verdict.answer) == (
        TrajectoryClass.WRONG,
        Reason.NO_BOXED,
        None,
    )
