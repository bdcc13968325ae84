"""The answer-equivalence rules of docs/grading.md, each in both directions, graded through real
worker processes: the equation rule, and the classes other graders handle (issue 22)."""

import pytest

from tracefactory.grading import Grader, Reason
from tracefactory.schemas import TrajectoryClass

# An equation equals a value only as an assignment `var = value`; otherwise only an equation.
EQUATION_MATCHES = [
    ("x + y = 1", "1 = x + y"),  # sides swapped
    ("x + y = 1", "y + x = 1"),
    ("x = 3", "3"),
    ("y = 2x + 1", "2x + 1"),
    ("k = 45, n = 2", "45, 2"),  # several assignments against their values
    ("(p, q) = (3, 2)", "(3, 2)"),  # the left side names quantities: a tuple of variables,
    ("AB = 4", "4"),  # a segment
    ("x > 1", "2 < 2x"),  # inequalities with the same solutions
    (r"x^2 \ge 4", r"x^4 \ge 16"),
    ("x + y = 1", "2x + 2y = 2"),  # relations scaled by a constant (positive for an inequality)
    ("y = -x", "(1+i)(x+y) = 0"),
    (r"x^2 = -a", r"(x - i\sqrt{a})(x + i\sqrt{a}) = 0"),
    ("x^2 - 3a < 0", "3x^2 < 9a"),
    ("x < 1", "-2x > -2"),
]
EQUATION_MISMATCHES = [
    ("x + y = 1", "1"),  # math-verify alone reads only the right-hand side here
    ("a + 3z = 0", "0"),
    ("2x + z = 1", "1"),
    ("x + y = 1, x - y = 3", "1, 3"),
    ("x + y = 1", "x = 1"),
    ("x > 1", "x > 2"),
    ("x < 1", "-2x < -2"),  # a negative factor flips an inequality
    ("x = 0", "x^2 = 0"),  # a factor with a variable is not a scaling
    ("x + y = 1", "x + z = 1"),  # a renamed variable is a different answer
    ("y = x", "y = ix"),
]
CLASS_MATCHES = [
    ("10", "10 weeks"),  # unit words after a number
    ("10", r"10\text{ cm}^2"),
    ("10", "10 cm^2"),
    ("10", "10 square meters"),
    ("2i", "(1+i)^2"),  # i is the imaginary unit when the gold is complex
    ("-1", r"e^{i\pi}"),  # or a number against an answer with i
    (r"\cos x", r"\sin(90^\circ - x)"),  # degrees inside trigonometry are pi/180
    (r"\frac{1}{2}", r"\sin 30^\circ"),
    ("1000", "1 000"),  # space and thin-space thousands
    ("1000", r"1\,000"),
    ("1234567", "1 234 567"),
    ("1.5", r"1\frac{1}{2}"),  # mixed numbers
    ("1.5", "1 1/2"),
    ("-1.5", "-1 1/2"),
    (r"\frac{7}{3}", r"2\frac{1}{3}"),
    ("20:34", "20:34:00"),  # clock times
    ("20:34", "8:34 PM"),
    ("20:34", r"8:34 \text{ p.m.}"),
    ("00:15", "12:15 am"),
    (r"\frac{1}{3}", "0.3333"),  # a decimal of >= 4 significant digits within one last unit
    (r"\frac{1}{3}", "0.3334"),
    (r"\pi", "3.1416"),
    (r"\frac{2}{7}", "0.2857142857142857"),
    (r"(\frac{3}{5}, \frac{8}{3}]", "(0.6, 2.6667]"),  # and so does each end of an interval
    (r"[0, \pi]", "[0, 3.1416]"),
    ("10", r"10\%"),  # choice: a percent is its number
    ("1, 2", "2, 1"),  # choice: a list of values is unordered
    (r"((x+3)(x^2+6x+9))^{1/3}", r"((x+3)^2 (x+3))^{1/3}"),  # equal once expanded
    (r"\frac{2s^2+6s-25}{10s}", r"\frac{0.1(2.0s^2+6.0s-25.0)}{s}"),  # decimals read exactly
    (r"\sin(x/2)\cos(x)", r"\frac{\sin(x/2)}{1+\tan(x)\tan(x/2)}"),  # a trigonometric identity
    (r"\frac{1}{2}", r"\frac{2}{4}"),  # choice: an unsimplified fraction is its value
]
CLASS_MISMATCHES = [
    ("11", "10 weeks"),
    ("x", "10 pi"),
    ("1.6", "1 1/2"),
    ("20:34", "8:34 AM"),
    ("20:34", "20:35"),
    (r"\frac{1}{3}", "0.33"),  # two significant digits: not a rounding we accept
    (r"\frac{1}{3}", "0.3336"),  # beyond one unit of the last place
    (r"\pi", "3.14"),
    (r"(\frac{3}{5}, \frac{8}{3}]", "(0.6, 2.67]"),
    (r"(\frac{3}{5}, \frac{8}{3}]", "(0.6, 2.6667)"),  # the brackets must agree
    ("0.1", r"10\%"),  # choice: a percent is not its fraction
    ("(1, 2)", "(2, 1)"),  # choice: a tuple (parentheses) is ordered
    ("(3, 1)", r"\{1, 3\}"),  # and never a set in braces
    ("0.1", "10%"),  # a bare % too
    ("1.22", "1,22"),  # choice: no decimal comma
    ("5", "5.001"),  # one unit of the last place is not a rounding
    ("1, 2", "1, 2, 3"),
    ("(x+1)^{200}", "(x+1)^{201}"),
    ("x", "X"),  # variables are case-sensitive (math-verify alone reads X as x)
    ("y = 1 + x", "Y = 1 + X"),
    ("0", "4 0/0"),  # 0/0 is undefined, equal to nothing
    ("0", "0 0/0"),
    (r"\sin(x)\cos(x)", r"\sin(2x)"),
    (r"\frac{x}{3}", "0.333x"),  # exact inside an expression: no rounding tolerance there
]


def _grade(grader: Grader, gold: str, answer: str):
    return grader.grade(rf"\boxed{{{answer}}}", gold)


@pytest.mark.parametrize(("gold", "answer"), EQUATION_MATCHES + CLASS_MATCHES)
def test_equivalent_answers_match_both_ways(shared_grader: Grader, gold: str, answer: str):
    for first, second in ((gold, answer), (answer, gold)):
        verdict = _grade(shared_grader, first, second)
        assert (verdict.label, verdict.reason) == (TrajectoryClass.CORRECT, Reason.MATCH), (
            first,
            second,
        )


@pytest.mark.parametrize(("gold", "answer"), EQUATION_MISMATCHES + CLASS_MISMATCHES)
def test_different_answers_mismatch_both_ways(shared_grader: Grader, gold: str, answer: str):
    for first, second in ((gold, answer), (answer, gold)):
        verdict = _grade(shared_grader, first, second)
        assert verdict.label is TrajectoryClass.WRONG, (first, second)


# Several final boxes joined only by `,`, `;`, `and`, delimiters or spaces are one answer; when it
# does not match, the last box alone is compared (a gold may record only the last part).
MULTI_BOX = [
    (r"So \boxed{1} and \boxed{2}.", "1, 2", TrajectoryClass.CORRECT),
    (r"So \boxed{1} and \boxed{2}.", r"\{1, 2\}", TrajectoryClass.CORRECT),
    (r"$\boxed{k=45}$, $\boxed{n=2}$", "k=45, n=2", TrajectoryClass.CORRECT),
    (r"\boxed{3}\quad\boxed{-3}", r"\pm 3", TrajectoryClass.CORRECT),
    (r"\boxed{5}, \boxed{5}", "5", TrajectoryClass.CORRECT),  # a repeated part counts once
    (r"\boxed{\frac{1}{2}} = \boxed{0.5}", "0.5", TrajectoryClass.CORRECT),  # one answer, twice
    (r"So \boxed{1} and \boxed{2}.", "2", TrajectoryClass.CORRECT),  # a gold of the last part
    (r"So \boxed{1} and \boxed{2}.", "1", TrajectoryClass.WRONG),  # but never an earlier one
    (r"\[ \boxed{\text{Yes}} \] \[ \boxed{4} \]", "4", TrajectoryClass.CORRECT),
    (r"\boxed{3} or \boxed{4}", "3", TrajectoryClass.WRONG),  # a hedge: the last box counts
    (r"First \boxed{3}. Then the final answer is \boxed{4}", "4", TrajectoryClass.CORRECT),
]


@pytest.mark.parametrize(("response", "gold", "label"), MULTI_BOX)
def test_final_boxes_joined_by_separators_are_one_answer(
    shared_grader: Grader, response: str, gold: str, label: TrajectoryClass
):
    assert shared_grader.grade(response, gold).label is label
