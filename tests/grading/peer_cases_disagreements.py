"""Every case of peer_cases.jsonl where our verdict (label 1 or not) disagrees with the peer suite's
expected verdict, with the reason. test_peer_cases.py fails if a disagreement appears that is not
listed here, or a listed one stops disagreeing.

Kinds of reasons:
- "deliberate": a rule of docs/grading.md that the peer decides otherwise (order, percent,
  tolerance, the boxed-answer contract, the equation rule).
- "source convention": the peer's own convention, not answer equivalence (multiple-choice
  letters); our verdict is the right one for graded answers. (The STACK cases whose verdict rests
  on a CAS convention were dropped from the corpus: `DROPPED`.)
- "limitation": an equivalence our grader does not prove (kept visible, not hacked around).
"""

_LAST_BOX = "deliberate: the answer is the last box; "
_ORDER = "deliberate: a bare list of values is unordered (docs/grading.md, Order)"
_PERCENT = "deliberate: a percent is its number, 10% is 10, not 0.1 (docs/grading.md, Percent)"

DISAGREEMENTS: dict[str, str] = {
    "p005": "deliberate: a comma is a thousands or list separator, never a decimal comma",
    "p006": "deliberate: a comma is a thousands or list separator, never a decimal comma",
    "p107": _LAST_BOX + "the final answer of this response is unboxed text",
    "p146": _LAST_BOX + "words ('for part (a) and') stand between the two boxes",
    "p156": _LAST_BOX + "labels ('y_2 =') stand between the two boxes",
    "p214": "source convention: a multiple-choice letter with its text ('C. x = 42') is not the "
    "letter as an answer",
    "p215": "source convention: a multiple-choice letter with its text ('C. x = 42') is not the "
    "letter as an answer",
    "p229": _ORDER,
    "p235": _ORDER,
    "p351": "deliberate: an assignment x = 1 equals its value 1 (docs/grading.md, Equations)",
    "p481": _PERCENT,
    "p499": "deliberate: 1 vs 1.0001: a decimal must be less than one unit of its last place "
    "from the exact value (the peer accepts a relative 1e-4)",
    "p536": _PERCENT,
    "p541": _PERCENT,
}

# Cases whose verdict depends on whether the comparison finishes within the grader's time bound:
# graded in time they agree with the peer, cut off (a loaded machine) they are a timeout. Either
# outcome passes; every other case must land exactly as listed above.
TIME_BOUND = {
    "p363": "agrees when sympy finishes in time; the solution-set comparison is slow enough to hit "
    "the 10 s bound on a loaded machine",
}

# STACK cases taken out of the corpus: their verdict rests on a convention of the CAS's answer test
# that a math-answer grader does not share, not on answer equivalence (test_peer_cases.py's
# docstring, docs/grading.md). Found by reviewing the disagreements, so STACK cases resting on the
# same conventions where we happen to agree remain.
DROPPED = {
    **dict.fromkeys(
        ("p272", "p284", "p290", "p295", "p297", "p321", "p329", "p331", "p332"),
        "variables assumed positive: sqrt(1/x) = 1/sqrt(x), ln(a^2 b) = 2 ln a + ln b, "
        "(x^3)^k = x^(3k) hold only for positive variables; an answer's variables are real",
    ),
    **dict.fromkeys(
        ("p348", "p349", "p427"),
        "set elements compared without simplifying: the CAS calls sets of equal numbers different",
    ),
    "p258": "floats compared strictly: 0.333333333333333 is not 1/3 for the CAS",
    "p267": "float arithmetic: the CAS's 100.4-80.0 is 20.400000000000006, not 20.4",
    "p380": "equations told apart by the multiplicity of their roots (a b = 0, a^3 b^3 = 0)",
    "p383": "equations told apart by domain (x = y, sqrt(x) = sqrt(y))",
    "p417": "a renamed variable accepted (a > 1 for x > 1)",
}
