"""Every case of peer_cases.jsonl where our verdict (label 1 or not) disagrees with the peer suite's
expected verdict, with the reason. test_peer_cases.py fails if a disagreement appears that is not
listed here, or a listed one stops disagreeing.

Kinds of reasons:
- "deliberate": a rule of docs/grading.md that the peer decides otherwise (order, percent,
  tolerance, the boxed-answer contract, the equation rule).
- "source convention": the peer's own convention, not answer equivalence (a CAS comparing sets
  without simplifying, float arithmetic, multiple-choice letters); our verdict is the right one
  for graded answers.
- "limitation": an equivalence our grader does not prove (kept visible, not hacked around).
"""

_LAST_BOX = "deliberate: the answer is the last box; "
_ORDER = "deliberate: a bare list of values is unordered (docs/grading.md, Order)"
_POSITIVE = (
    "limitation: the identity holds for positive variables only; the CAS suite assumes that, "
    "our real-variable comparison does not"
)
_SOLUTION_SET = (
    "limitation: equations with the same solutions (scaled, factored) are not proven equal; "
    "equations are compared up to rearrangement"
)
_CAS_SETS = (
    "source convention: the CAS compares set elements without simplifying; the elements are "
    "equal numbers, so the sets are equal"
)
_CASE = "limitation: math-verify reads variable names case-insensitively (X is x)"

DISAGREEMENTS: dict[str, str] = {
    "p005": "deliberate: a comma is a thousands or list separator, never a decimal comma",
    "p006": "deliberate: a comma is a thousands or list separator, never a decimal comma",
    "p090": "limitation: the decimal-rounding rule covers a single number, not interval "
    "endpoints (2.6667 for 8/3)",
    "p107": _LAST_BOX + "the final answer of this response is unboxed text",
    "p146": _LAST_BOX + "words ('for part (a) and') stand between the two boxes",
    "p156": _LAST_BOX + "labels ('y_2 =') stand between the two boxes",
    "p214": "source convention: a multiple-choice letter with its text ('C. x = 42') is not the "
    "letter as an answer",
    "p215": "source convention: a multiple-choice letter with its text ('C. x = 42') is not the "
    "letter as an answer",
    "p229": _ORDER,
    "p235": _ORDER,
    "p249": _CASE,
    "p251": _CASE,
    "p258": "deliberate: a 15-digit decimal within one unit of its last place is a rounding of "
    "1/3 (docs/grading.md, Tolerance); the CAS compares floats strictly",
    "p265": "limitation: floats inside a symbolic expression are not proven equal to its "
    "rational form",
    "p267": "source convention: 100.4 - 80.0 is 20.4; the CAS's float arithmetic gives "
    "20.400000000000006",
    "p272": _POSITIVE,
    "p284": _POSITIVE,
    "p290": _POSITIVE,
    "p295": _POSITIVE,
    "p297": _POSITIVE,
    "p299": "limitation: sympy does not prove the two cube roots equal (the radicands are equal "
    "only after expanding)",
    "p321": _POSITIVE,
    "p328": "limitation: a trigonometric identity sympy's simplify does not prove",
    "p329": _POSITIVE,
    "p331": _POSITIVE,
    "p332": _POSITIVE,
    "p348": _CAS_SETS,
    "p349": _CAS_SETS + " ((a-x)^6000 = (x-a)^6000)",
    "p351": "deliberate: an assignment x = 1 equals its value 1 (docs/grading.md, Equations)",
    "p370": _SOLUTION_SET,
    "p380": "source convention: the CAS tells a*b=0 from a^3*b^3=0 by multiplicity; as "
    "equations over the reals math-verify calls them equal",
    "p383": "source convention: the CAS tells x=y from sqrt(x)=sqrt(y) by domain; math-verify "
    "calls them equal",
    "p386": _SOLUTION_SET,
    "p416": "limitation: an inequality in two variables is not solved (the solution-set rule "
    "needs one variable)",
    "p417": "source convention: the CAS accepts a renamed variable (a>1 for x>1); variable "
    "names are strict here",
    "p427": _CAS_SETS,
    "p481": "deliberate: a percent is its number, 10% is 10, not 0.1 (docs/grading.md, Percent)",
    "p499": "deliberate: 1 vs 1.0001: a decimal must be less than one unit of its last place "
    "from the exact value (the peer accepts a relative 1e-4)",
}

# Cases whose verdict depends on whether the comparison finishes within the grader's time bound:
# graded in time they agree with the peer, cut off (a loaded machine) they are a timeout. Either
# outcome passes; every other case must land exactly as listed above.
TIME_BOUND = {
    "p363": "agrees when sympy finishes in time; the solution-set comparison is slow enough to hit "
    "the 10 s bound on a loaded machine",
}
