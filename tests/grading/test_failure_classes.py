"""Known failure classes of math-verify-based graders, several variants each, graded through real
worker processes (compare.py and normalize.py say what is done about each)."""

import pytest

from tracefactory.grading import Grader, Reason
from tracefactory.schemas import TrajectoryClass

# Different numbers that math-verify's rounding to 6 decimals calls equal.
TOLERANCE_MISMATCHES = [
    (r"\frac{1}{2004!}", r"\frac{1}{2006!}"),
    (r"\frac{1}{30!}", r"\frac{1}{31!}"),
    (r"\frac{1}{2^{99}}", r"\frac{1}{2^{98}}"),
    (r"2^{-100}", r"2^{-101}"),
    (r"10^{-20}", r"2\cdot 10^{-20}"),
    (r"\frac{2^{2005}+1}{3 \cdot 2^{2006}}", r"\frac{1}{3 \cdot 2^{2006}}"),
    (r"e^{-100}", r"e^{-101}"),
    (r"10^{20}+1", r"10^{20}"),
    ("100000000000000000001", "100000000000000000000"),
]
# ...while the same values written differently, and decimals that are roundings, still match.
TOLERANCE_MATCHES = [
    (r"\frac{1}{2004!}", r"\frac{2005 \cdot 2006}{2006!}"),
    (r"2^{-100}", r"\frac{1}{2^{100}}"),
    (r"\frac{1}{10^{10}}", r"10^{-10}"),
    (r"10^{20}", "100000000000000000000"),
    (r"e^{-100}", r"\frac{1}{e^{100}}"),
    (r"\frac{1}{3}", "0.333333"),
    ("0.000123", r"1.2345\times10^{-4}"),
    ("50", "50 percent"),
]
THOUSANDS_MATCHES = [
    ("1000", "1,000"),
    ("1000", "1{,}000"),
    ("1000", r"1\,000"),
    ("1000", r"1\ 000"),
    ("1000", "1~000"),
    ("1000000", r"1\,000\,000"),
    ("1234567", "1,234,567"),
    ("10000", r"10\,000 \text{ dollars}"),
    ("(1,2)", "(1, 2)"),  # tuples are untouched
    ("1, 2", "2, 1"),
]
THOUSANDS_MISMATCHES = [
    ("1000", "(1,000)"),  # a tuple, not a number
    ("1000", "1.000"),
    ("(1,2)", "(2,1)"),
    (r"3.141\,592", "3141592"),  # digits after a decimal point are never joined
]
REPEATING_MATCHES = [
    (r"\frac{1}{3}", r"0.\overline{3}"),
    (r"\frac{1}{3}", "0.(3)"),
    (r"\frac{1}{3}", r"0.\bar{3}"),
    (r"\frac{1}{3}", r"0.\dot{3}"),
    (r"\frac{1}{3}", r"0.\overline{33}"),
    (r"\frac{4}{3}", r"1.\overline{3}"),
    (r"\frac{1}{6}", r"0.1\overline{6}"),
    (r"\frac{1}{7}", r"0.\overline{142857}"),
    (r"-\frac{1}{3}", r"-0.\overline{3}"),
    (r"0.\overline{3}", r"\frac{1}{3}"),
]
REPEATING_MISMATCHES = [
    (r"\frac{2}{3}", r"0.\overline{3}"),
    ("0.3", r"0.\overline{3}"),
    (r"\frac{1}{6}", r"0.\overline{16}"),
]
UNICODE_MATCHES = [
    ("-5", "\u22125"),
    (r"-\frac{1}{2}", "\u2212\\frac{1}{2}"),
    ("-5", "\u20135"),  # en dash written for a minus
    ("6", "2\u00d73"),
    (r"2\sqrt{2}", "2\u221a2"),
    (r"\sqrt{3}", "\u221a{3}"),
    (r"\pi", "\u03c0"),
    (r"\infty", "\u221e"),
    ("30", "30\u00b0"),
]
UNICODE_MISMATCHES = [("-1", "1\u20132"), ("5", "\u22125")]  # a range is not a difference
WRAPPER_MATCHES = [
    ("5", r"\text{5}"),
    ("5", r"\textbf{5}"),
    ("5", r"\mathrm{5}"),
    ("5", r"\mathbf{5}"),
    ("5", r"\text{5 cm}"),
    ("5", r"\textbf{5 cm}"),
    ("5", r"5\,\text{cm}"),
    ("5", r"5 \mathrm{~cm}"),
    ("12", "12 apples"),
    ("12", r"12 \text{apples}"),
    ("12", r"\text{12 apples}"),
    ("20", r"20 \text{ m/s}"),
    (r"\text{Evelyn}", r"\text{Evelyn}"),
]
WRAPPER_MISMATCHES = [("6", r"\text{5 cm}"), ("13", "12 apples"), (r"\text{no}", r"\text{on}")]
PM_MATCHES = [
    (r"\pm 3", "3, -3"),
    (r"\pm 3", "-3, 3"),
    (r"1 \pm \sqrt{2}", r"1+\sqrt{2}, 1-\sqrt{2}"),
    ("2, 4", r"3 \pm 1"),
]
PM_MISMATCHES = [("3", r"\pm 3"), (r"\pm 3", "3"), (r"\pm 2021", "2021")]  # half is not all
LEADING_ZERO_MATCHES = [("16", "016"), ("16", "0016"), ("-16", "-016"), ("7", "007"), ("0", "000")]
LEADING_ZERO_MISMATCHES = [("160", "016"), ("16", "0.16")]
DEGREE_PERCENT_MATCHES = [
    ("30", r"30^\circ"),
    ("30", r"30^{\circ}"),
    ("30", r"30\text{ degrees}"),
    (r"30^\circ", "30"),
    ("50", r"50\%"),
    ("50", r"50 \%"),
    ("50", r"50\text{\%}"),
    (r"50\%", "50"),
]
DEGREE_PERCENT_MISMATCHES = [("31", r"30^\circ"), ("51", r"50\%"), ("0.5", r"50\%")]
INTERVAL_TUPLE_MATCHES = [
    ("[1,2)", "[1, 2)"),
    (r"(-\infty, 0) \cup (1, \infty)", r"(-\infty,0)\cup(1,\infty)"),
    ("(1,2,3)", "(1, 2, 3)"),
    (r"(3, \frac{1}{2})", "(3, 0.5)"),
    (r"(0,\infty)", "x>0"),
]
INTERVAL_TUPLE_MISMATCHES = [("[1,2]", "(1,2)"), ("[1,2)", "(1,2]"), ("(1,2,3)", "(1,3,2)")]
FRACTION_ROOT_MATCHES = [
    (r"\frac{1}{2}", r"\dfrac{1}{2}"),
    (r"\frac{1}{2}", r"\tfrac{1}{2}"),
    (r"\frac{1}{2}", r"\frac12"),
    (r"\frac{1}{2}", r"\dfrac12"),
    (r"\frac{1}{2}", r"\tfrac12"),
    (r"\frac{1}{2}", r"\frac 12"),
    (r"\sqrt{2}", r"\sqrt2"),
    (r"3\sqrt{2}", r"3\sqrt2"),
    (r"\frac{\sqrt{3}}{2}", r"\dfrac{\sqrt3}{2}"),
    ("2", r"\sqrt[3]{8}"),
    (r"4\sqrt{2}", r"4\sqrt(2)"),  # parentheses for braces
]
FRACTION_ROOT_MISMATCHES = [
    (r"\frac{1}{2}", r"\frac21"),
    (r"\sqrt{2}", r"\sqrt3"),
    ("4", r"4\sqrt(2)"),  # math-verify alone drops the parenthesised radicand
]
# math-verify raises inside `verify` on purpose here (nan/zoo): still a mismatch, never an error.
OTHER_MISMATCHES = [
    ("12:00", "1:00"),
    ("n=2,3,4", "n=1,2,3"),
    ("D=(0,1)", "D=(0,1.5)"),
    (r"1 - \frac{1}{e}", r"1 + \frac{1}{e}"),
    ("19, 46, 82", "21, 36, 82"),
    (r"-\infty", r"\infty"),
    (r"1, 2, \ldots, n", r"1, 3, 5, \ldots, 2n-1"),  # math-verify reads both as 2
    (r"1:2:3:\ldots", r"1:4:9:\ldots"),
    (r"2, 4, 6, \dots", r"2, 4, 8, \dots"),
]
# Forms that need evaluation or simplification, not string rewrites.
EXPRESSION_MATCHES = [
    (r"\sqrt{17}", "4.123105625617661"),
    (r"1,\frac{9}{2}", "1,4.5"),
    (r"\frac{x+2}{7}", r"\frac{x}{7}+\frac{2}{7}"),
    (r"\tan^2(y)+1", r"\sec^2(y)"),
    ("x^2+2x+1", "(x+1)^2"),
]
ELLIPSIS_MATCHES = [
    (r"1, 2, \ldots, n", r"1,2,\dots,n"),
    (r"1, 2, 3, \ldots", "1, 2, 3, ..."),
    (r"1, 3, 5, \cdots, 2n-1", r"1,\ 3,\ 5,\ \ldots,\ 2n-1"),
]

MATCHES = (
    TOLERANCE_MATCHES
    + THOUSANDS_MATCHES
    + REPEATING_MATCHES
    + UNICODE_MATCHES
    + WRAPPER_MATCHES
    + PM_MATCHES
    + LEADING_ZERO_MATCHES
    + DEGREE_PERCENT_MATCHES
    + INTERVAL_TUPLE_MATCHES
    + FRACTION_ROOT_MATCHES
    + ELLIPSIS_MATCHES
    + EXPRESSION_MATCHES
)
MISMATCHES = (
    TOLERANCE_MISMATCHES
    + THOUSANDS_MISMATCHES
    + REPEATING_MISMATCHES
    + UNICODE_MISMATCHES
    + WRAPPER_MISMATCHES
    + PM_MISMATCHES
    + LEADING_ZERO_MISMATCHES
    + DEGREE_PERCENT_MISMATCHES
    + INTERVAL_TUPLE_MISMATCHES
    + FRACTION_ROOT_MISMATCHES
    + OTHER_MISMATCHES
)


@pytest.mark.parametrize(("gold", "answer"), MATCHES)
def test_equivalent_forms_match(shared_grader: Grader, gold: str, answer: str):
    verdict = shared_grader.grade(rf"\boxed{{{answer}}}", gold)
    assert (verdict.label, verdict.reason) == (TrajectoryClass.CORRECT, Reason.MATCH)


@pytest.mark.parametrize(("gold", "answer"), MISMATCHES)
def test_different_answers_do_not_match(shared_grader: Grader, gold: str, answer: str):
    verdict = shared_grader.grade(rf"\boxed{{{answer}}}", gold)
    assert verdict.label is TrajectoryClass.WRONG
    assert verdict.reason in (Reason.MISMATCH, Reason.UNPARSEABLE)


@pytest.mark.parametrize(("gold", "answer"), MATCHES + MISMATCHES)
def test_verdict_does_not_depend_on_which_side_is_gold(shared_grader: Grader, gold, answer):
    forward = shared_grader.grade(rf"\boxed{{{answer}}}", gold)
    backward = shared_grader.grade(rf"\boxed{{{gold}}}", answer)
    assert forward.label == backward.label
