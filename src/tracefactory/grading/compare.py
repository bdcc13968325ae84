"""Answer comparison with math-verify. Runs only inside grader worker processes.

Model output is untrusted: parsing it can build huge sympy objects, and even ``str()`` of one can
hang (NOTES-toolchain.md). So this module runs in workers (the parent imports it only for
`ComparisonSettings`), and only reasons and extracted answers (strings) ever leave a worker. The
worker bounds each comparison with its own SIGALRM (a worker is a fresh interpreter running tasks
in its main thread, where signals work) and a memory limit; the parent's hard kill is the backstop
for a hang no signal interrupts.

Known math-verify failure modes and what we do (each covered in tests/grading):

- leading zeros ``016`` vs ``16``, ``\\text{13}``, units and nouns (``864 \\mbox{ inches}^2``,
  ``12 apples``), percent (``38\\%`` equals ``38``, not ``0.38``), degrees (``30^\\circ`` equals
  ``30``), intervals, tuples (``1,000`` is 1000 but ``(1,000)`` a tuple), unordered root lists,
  ``\\pm`` (expanded to both roots; ``\\pm 3`` is not ``3``), ``x=3`` vs ``3``, ``\\dfrac``,
  ``\\tfrac``, ``\\frac12``, ``\\sqrt2``, the Unicode minus: math-verify 0.9 already handles
  them with the settings below; the tests pin that down.
- thin-space thousands, repeating decimals, other Unicode symbols, ``\\text{5 cm}``, markdown
  bold, E-notation, side conditions, ``x(t)=`` prefixes: rewritten first (normalize.py).
- two different numbers within the float tolerance (``\\frac{1}{2004!}`` vs ``\\frac{1}{2006!}``,
  ``2^{-100}`` vs ``2^{-101}``: math-verify rounds both to 0 at 6 decimals): when math-verify says
  equal, two numbers written without a decimal point are compared again, exactly if both are
  rational, else to 30 significant digits. A written decimal may be a rounding (``0.333333`` for
  ``1/3``), so math-verify's tolerance stands whenever either side has one.
- a pattern with an ellipsis (``1, 2, \\ldots, n`` parses to 2, so it matched
  ``1, 3, 5, \\ldots, 2n-1``): compared as text, without spaces and with one ellipsis spelling.
  An equivalent pattern written differently is then a mismatch: the safe side.
- math-verify is asymmetric (``verify(gold, pred)``); we accept either direction, except that a
  general equation never equals a bare value (``x + y = 1`` vs ``1``: math-verify compares the
  value with the right-hand side); only an assignment ``x = 3`` equals its value.
- clock times (``20:34`` vs ``8:34 PM``), a complex gold (``i`` is the imaginary unit), a long
  decimal against an exact number (also end for end in an interval), relations scaled by a
  constant, expressions equal once expanded (or by Fu's trigonometric rules), variable names
  that differ only in case (math-verify lowercases them), ``0/0``: handled here, rules in
  docs/grading.md.
- math-verify's ``parse`` turns any exception into "no expression" (a crash would read as an
  unparseable, i.e. wrong, answer); we call it with ``raise_on_error`` so that the worker answers
  ``error`` instead, as it does for a crash anywhere in our own code. ``verify`` keeps its own
  rule: it tries every pair of parsed forms and an exception in one pair means that pair is not
  equal (it raises on purpose for nan and zoo, ``12:00`` vs ``1:00``), so raising there would
  turn wrong answers, and even matches found by another pair, into errors.
"""

from __future__ import annotations

import logging
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from tracefactory.grading.normalize import (
    canonical_text,
    has_ellipsis,
    is_plain_number,
    normalize_answer,
)
from tracefactory.grading.verdict import Reason

logger = logging.getLogger(__name__)
T = TypeVar("T")

# A decimal point (0.5, .5, 5.) or a percent: math-verify's tolerance and its reading of 50% as
# both 50 and 1/2 stand for these.
_INEXACT = re.compile(r"\d\.\d|(?<!\d)\.\d|\d\.(?!\d)|%|percent")
_EXACT_DIGITS = 30  # significant digits two exact irrational numbers are compared to


class GraderMode(StrEnum):
    """Which rules grade: ``tracefactory`` (ours: docs/grading.md) or ``official`` (the paper's
    evaluation exactly, official.py), for reproducing the paper's tables."""

    TRACEFACTORY = "tracefactory"
    OFFICIAL = "official"


@dataclass(frozen=True)
class ComparisonSettings:
    """math-verify settings, fixed per grader version (they are part of the cache key).

    Attributes:
        float_rounding: decimal places floats are rounded to before comparing (math-verify).
        numeric_precision: significant digits for numeric equality via evalf (math-verify).
        strict: variables must match by name, sets never equal tuples (math-verify).
        allow_set_relation_comp: an interval may equal an inequality, ``(0,\\infty)`` vs ``x>0``.
        mode: ``official`` ignores the other settings (the paper's are fixed, official.py).
    """

    float_rounding: int = 6
    numeric_precision: int = 15
    strict: bool = True
    allow_set_relation_comp: bool = True
    mode: GraderMode = GraderMode.TRACEFACTORY


class ComparisonTimeout(BaseException):
    """Raised by the worker's alarm. A BaseException, so math-verify's ``except Exception``
    (which turns any error into ``False``) cannot swallow it and call a timeout a mismatch."""


def _parse(latex: str, raise_on_error: bool = True) -> list:
    """math-verify parse of one bare answer, its own timeout off (the worker's alarm bounds it).
    `raise_on_error` False for a part we cut out ourselves: a part that does not parse is then
    no expression, not a crash."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    return parse(
        f"${latex}$",
        extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()],
        parsing_timeout=None,
        raise_on_error=raise_on_error,
    )


def _has_expression(parsed: list) -> bool:
    """True if math-verify produced a sympy object, not just its raw-string fallback."""
    return any(not isinstance(item, str) for item in parsed)


def _first_expression(parsed: list) -> object | None:
    """The sympy object math-verify parsed, or None if it fell back to the raw string."""
    return next((item for item in parsed if not isinstance(item, str)), None)


def _equations(expression: object) -> list:
    """The equations of `expression`: itself, the equations of an ``And`` chain (``a=b=3``), or
    those of the elements of a set or tuple (``k=45, n=2``)."""
    import sympy

    if isinstance(expression, sympy.Eq):
        return [expression]
    if isinstance(expression, sympy.And):
        return [arg for arg in expression.args if isinstance(arg, sympy.Eq)]
    if isinstance(expression, sympy.FiniteSet | sympy.Tuple | list | tuple):
        return [eq for element in expression for eq in _equations(element)]
    return []


def _is_assignment(equation: object) -> bool:
    """``name = value``: the left side names a quantity (see `_names_a_quantity`)."""
    return _names_a_quantity(equation.lhs)


def _names_a_quantity(side: object) -> bool:
    """A variable (``x``), a tuple of them (``(p, q)``), or a product, ratio or absolute value of
    them (a segment ``AB``, a ratio ``V_1 : V_2``, ``|AB|``): a name, not a relation. A sum or
    anything with a number (``x + y``, ``2x + z``) is an equation to satisfy, not a name."""
    import sympy

    if isinstance(side, sympy.Symbol):
        return True
    if isinstance(side, sympy.Tuple | sympy.Mul):
        return all(_names_a_quantity(arg) for arg in side.args)
    if isinstance(side, sympy.Abs):
        return _names_a_quantity(side.args[0])
    if isinstance(side, sympy.Pow):
        return side.exp == -1 and _names_a_quantity(side.base)
    return False


def _equation_against_value(parsed_gold: list, parsed_answer: list) -> bool:
    """Whether one side is a general equation and the other a bare value.

    math-verify compares an equation with a value through the equation's right-hand side, so
    ``x + y = 1`` "equals" ``1`` (always when the equation is the prediction, and so in one of our
    two directions). The rule: an equation equals a value only when it is an assignment
    ``var = value``; any other equation equals only an equation.
    """
    gold_equations = _equations(_first_expression(parsed_gold))
    answer_equations = _equations(_first_expression(parsed_answer))
    if bool(gold_equations) == bool(answer_equations):
        return False
    return not all(_is_assignment(eq) for eq in gold_equations or answer_equations)


_EXPLICIT_SET = re.compile(r"^(?:\\left)?\\?\{")


def _tuple_against_set(
    gold_text: str, parsed_gold: list, answer_text: str, parsed_answer: list
) -> bool:
    """Whether one side is a tuple and the other a set written in braces: ``(3, 1)`` is ordered,
    ``\\{1, 3\\}`` is not (math-verify compares their elements as sets)."""
    import sympy

    for tuple_parsed, set_text, set_parsed in (
        (parsed_gold, answer_text, parsed_answer),
        (parsed_answer, gold_text, parsed_gold),
    ):
        if (
            isinstance(_first_expression(tuple_parsed), sympy.Tuple)
            and isinstance(_first_expression(set_parsed), sympy.FiniteSet)
            and _EXPLICIT_SET.match(set_text)
        ):
            return True
    return False


def _has_imaginary_unit(parsed: list) -> bool:
    """Whether the answer uses the symbol ``i``."""
    import sympy

    expression = _first_expression(parsed)
    return isinstance(expression, sympy.Basic) and any(
        symbol.name == "i" for symbol in expression.free_symbols
    )


def _is_constant(parsed: list) -> bool:
    """Whether the answer is a number (no variable): ``-1``, ``\\frac{\\sqrt{2}}{2}``."""
    import sympy

    expression = _first_expression(parsed)
    return isinstance(expression, sympy.Expr) and not expression.free_symbols


def _same_solution_set(parsed_gold: list, parsed_answer: list) -> bool:
    """Whether two inequalities in the same single variable have the same solutions:
    ``x > 1`` and ``2 < 2x``, ``x^2 \\ge 4`` and ``x^4 \\ge 16`` (math-verify compares the
    two sides of each relation, not what the relation means)."""
    import sympy

    gold, answer = _first_expression(parsed_gold), _first_expression(parsed_answer)
    relations = (sympy.StrictGreaterThan, sympy.StrictLessThan, sympy.GreaterThan, sympy.LessThan)
    if not (isinstance(gold, relations) and isinstance(answer, relations)):
        return False
    variables = gold.free_symbols
    if len(variables) != 1 or answer.free_symbols != variables:
        return False
    try:
        return gold.as_set() == answer.as_set()
    except (NotImplementedError, TypeError, ValueError):  # sympy cannot solve it: unproven
        return False


_MAX_EXPANDED_POWER = 64  # an integer power above this is not expanded (size grows with it)


def _difference_form(relation: object) -> tuple[str, object] | None:
    """An equation as ``("=", lhs - rhs)``, an inequality as ``("<", d)`` or ``("<=", d)`` with
    the relation reading ``d < 0`` (``a > b`` is ``b - a < 0``); None for anything else."""
    import sympy

    if not isinstance(relation, sympy.Rel) or not all(
        isinstance(side, sympy.Expr) for side in relation.args
    ):  # a set or tuple on one side (``n = 1, 2, 3``) is not a relation between values
        return None
    if isinstance(relation, sympy.Eq):
        return "=", relation.lhs - relation.rhs
    if isinstance(relation, sympy.StrictLessThan | sympy.LessThan):
        kind = "<" if isinstance(relation, sympy.StrictLessThan) else "<="
        return kind, relation.lhs - relation.rhs
    if isinstance(relation, sympy.StrictGreaterThan | sympy.GreaterThan):
        kind = "<" if isinstance(relation, sympy.StrictGreaterThan) else "<="
        return kind, relation.rhs - relation.lhs
    return None


def _same_variables(gold: object, answer: object) -> tuple[object, object] | None:
    """`gold` and `answer` over the same sympy symbols, or None if their variables differ.

    A symbol is matched by name (the two parses may give ``x`` different assumptions), and ``i``
    is the imaginary unit when only one side uses it: it is not one of the answer's variables
    then (``(1+i)(x+y) = 0`` against ``y = -x``)."""
    import sympy

    names_gold = {s.name for s in gold.free_symbols}
    names_answer = {s.name for s in answer.free_symbols}
    if "i" in names_gold ^ names_answer:
        gold, answer = (
            side.subs({s: sympy.I for s in side.free_symbols if s.name == "i"})
            for side in (gold, answer)
        )
        names_gold.discard("i")
        names_answer.discard("i")
    if not names_gold or names_gold != names_answer:
        return None
    by_name = {s.name: s for s in gold.free_symbols}
    return gold, answer.xreplace({s: by_name[s.name] for s in answer.free_symbols})


def _exact_decimals(expression: object) -> object:
    """`expression` with each decimal read as the exact number it writes (``0.1`` is 1/10)."""
    import sympy

    return expression.xreplace({f: sympy.Rational(str(f)) for f in expression.atoms(sympy.Float)})


def _proportional_relations(parsed_gold: list, parsed_answer: list) -> bool:
    """Whether two equations, or two inequalities of the same kind, are one another times a
    constant (positive for an inequality), so that they have the same solutions: ``y = -x`` and
    ``(1+i)(x+y) = 0``, ``x^2 = -a`` and ``(x - i\\sqrt{a})(x + i\\sqrt{a}) = 0``,
    ``x^2 - 3a < 0`` and ``3x^2 < 9a``. The variables must be the same: a renamed variable is a
    different answer."""
    import sympy

    gold = _difference_form(_first_expression(parsed_gold))
    answer = _difference_form(_first_expression(parsed_answer))
    if gold is None or answer is None or gold[0] != answer[0]:
        return False
    same = _same_variables(gold[1], answer[1])
    if same is None:
        return False
    gold_difference, answer_difference = same
    ratio = sympy.simplify(gold_difference / answer_difference)
    if not ratio.is_number or not ratio.is_finite or ratio.is_zero is not False:
        return False
    return gold[0] == "=" or bool(ratio.is_positive)  # a complex factor scales an equation only


def _same_expression_expanded(parsed_gold: list, parsed_answer: list) -> bool:
    """Whether two expressions in variables are equal once decimals are read as the exact
    numbers they write and products are expanded, also inside roots:
    ``((x+3)(x^2+6x+9))^{1/3}`` and ``((x+3)^2 (x+3))^{1/3}``, ``0.1 (2.0 s^2 - 25.0)/s`` and
    ``(2s^2 - 25)/(10s)``, and, with Fu's trigonometric rules, ``\\sin(x/2)\\cos x`` and
    ``\\sin(x/2)/(1 + \\tan x \\tan(x/2))`` (math-verify's simplify proves none of them).
    Exact, so stricter than the float tolerance; numbers without variables are left to
    math-verify."""
    import sympy

    gold, answer = _first_expression(parsed_gold), _first_expression(parsed_answer)
    if not (isinstance(gold, sympy.Expr) and isinstance(answer, sympy.Expr)):
        return False
    same = _same_variables(gold, answer)
    if same is None:
        return False
    difference = _exact_decimals(same[0] - same[1])
    powers = [p.exp for p in difference.atoms(sympy.Pow) if p.exp.is_Integer]
    if any(abs(exponent) > _MAX_EXPANDED_POWER for exponent in powers):
        return False
    if sympy.expand(difference) == 0 or sympy.simplify(difference) == 0:
        return True
    trigonometric = difference.has(sympy.functions.elementary.trigonometric.TrigonometricFunction)
    return trigonometric and sympy.fu(difference) == 0  # Fu's rules prove what simplify misses


def _imaginary(parsed: list) -> list:
    """`parsed` with the symbol ``i`` (whatever its assumptions) as the imaginary unit."""
    import sympy

    return [
        item.subs({s: sympy.I for s in item.free_symbols if s.name == "i"})
        if isinstance(item, sympy.Basic)
        else item
        for item in parsed
    ]


# 20:34, 20:34:00, 8:34 PM, 8:34 \text{ p.m.}: hours, two-digit minutes, optional seconds and
# half of the day.
_CLOCK = re.compile(
    r"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:\\(?:text|mathrm)\s*\{\s*)?"
    r"([ap])?(?:\.?\s*m\.?)?\s*\}?$",
    re.IGNORECASE,
)


def _clock_seconds(text: str) -> int | None:
    """Seconds since midnight of a clock time, or None if `text` is not one."""
    match = _CLOCK.match(text)
    if match is None:
        return None
    hours, minutes, seconds, half = match.groups()
    hours = int(hours)
    if half:
        hours = hours % 12 + (12 if half.lower() == "p" else 0)
    return (hours * 60 + int(minutes)) * 60 + int(seconds or 0)


def _same_clock_time(gold_text: str, answer_text: str) -> bool | None:
    """Whether two clock times are the same time of day; None unless both are clock times
    (math-verify reads ``20:34`` as the ratio 20/34)."""
    gold_seconds, answer_seconds = _clock_seconds(gold_text), _clock_seconds(answer_text)
    if gold_seconds is None or answer_seconds is None:
        return None
    return gold_seconds == answer_seconds


_DECIMAL = re.compile(r"^[+-]?(\d*)\.(\d+)$")
_MIN_ROUNDED_DIGITS = 4  # significant digits a decimal needs to stand for a rounded exact value


def _decimal_rounds(
    gold_text: str, parsed_gold: list, answer_text: str, parsed_answer: list
) -> bool:
    """Whether one side is a decimal that rounds or truncates the other side's exact number.

    ``0.3333`` and ``0.3334`` stand for ``\\frac{1}{3}``, ``3.1416`` for ``\\pi``: the decimal
    is less than one unit of its last written place from the exact value and has at least
    `_MIN_ROUNDED_DIGITS` significant digits (``0.33`` is not ``\\frac{1}{3}``).
    """
    import sympy

    for decimal_text, exact_text, exact_parsed in (
        (answer_text, gold_text, parsed_gold),
        (gold_text, answer_text, parsed_answer),
    ):
        decimal = _DECIMAL.match(decimal_text)
        if decimal is None or _INEXACT.search(exact_text):
            continue
        digits = (decimal.group(1) + decimal.group(2)).lstrip("0")
        exact = _first_expression(exact_parsed)
        if len(digits) < _MIN_ROUNDED_DIGITS or not isinstance(exact, sympy.Expr):
            continue
        if not exact.is_number:
            continue
        if not sympy.N(exact.doit(), 30).is_real:
            continue
        difference = abs(sympy.Rational(decimal_text) - exact.doit())
        if not difference.is_Rational:  # exact: 5.001 is one unit from 5, not less
            difference = sympy.N(difference, 30)
        if difference < sympy.Rational(1, 10 ** len(decimal.group(2))):
            return True
    return False


# An interval or pair: an opening bracket, two parts, a closing bracket (``\\left``/``\\right``).
_BRACKETED = re.compile(r"^(?:\\left)?([(\[])(.+?)(?:\\right)?([)\]])$")


def _split_top_level(text: str) -> list[str]:
    """`text` split at the commas outside any brackets or braces."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    return [*parts, text[start:].strip()]


def _endpoints_round(gold_text: str, answer_text: str) -> bool:
    """Whether two intervals (or pairs) with the same brackets have, end for end, equal numbers
    or a decimal that rounds the other's exact number (`_decimal_rounds`): ``(0.6, 2.6667]``
    for ``(\\frac{3}{5}, \\frac{8}{3}]``."""
    import sympy

    gold, answer = _BRACKETED.match(gold_text), _BRACKETED.match(answer_text)
    if gold is None or answer is None or (gold[1], gold[3]) != (answer[1], answer[3]):
        return False
    gold_ends, answer_ends = _split_top_level(gold[2]), _split_top_level(answer[2])
    if len(gold_ends) != 2 or len(answer_ends) != 2:
        return False
    for gold_end, answer_end in zip(gold_ends, answer_ends, strict=True):
        parsed_gold = _parse(gold_end, raise_on_error=False)
        parsed_answer = _parse(answer_end, raise_on_error=False)
        if _decimal_rounds(gold_end, parsed_gold, answer_end, parsed_answer):
            continue
        exact_gold = _first_expression(parsed_gold)
        exact_answer = _first_expression(parsed_answer)
        if not (isinstance(exact_gold, sympy.Expr) and isinstance(exact_answer, sympy.Expr)):
            return False
        if not (exact_gold.is_number and exact_answer.is_number):
            return False
        if sympy.simplify(exact_gold - exact_answer) != 0:
            return False
    return True


# Text that names no variable: a command (``\\sin``, ``\\pi``), or a ``\\text{...}``-like argument.
_NOT_VARIABLES = re.compile(r"\\(?:text\w*|mathrm|operatorname|mbox)\s*\{[^{}]*\}|\\[A-Za-z]+")
_SINGLE_LETTER = re.compile(r"(?<![A-Za-z])[A-Za-z](?![A-Za-z])")


def _variables_differ_in_case(gold_text: str, answer_text: str) -> bool:
    """Whether the two answers use the same single-letter variables but in a different case
    (``X`` for ``x``, ``Y = 1 + X`` for ``y = 1 + x``): math-verify reads names
    case-insensitively, but ``X`` and ``x`` are different variables. Words (``Yes``) and text
    are not variables."""
    gold = set(_SINGLE_LETTER.findall(_NOT_VARIABLES.sub(" ", gold_text)))
    answer = set(_SINGLE_LETTER.findall(_NOT_VARIABLES.sub(" ", answer_text)))
    return gold != answer and {v.lower() for v in gold} == {v.lower() for v in answer}


def compare_answers(gold: str, answer: str, settings: ComparisonSettings) -> Reason:
    """Compare an extracted answer with the gold answer, symmetrically.

    Returns:
        ``match`` if either ``verify(gold, answer)`` or ``verify(answer, gold)`` holds (or the
        normalized strings are equal); otherwise ``unparseable`` if the answer yields no sympy
        expression (math-verify fell back to its raw string), else ``mismatch``. A gold answer
        without an expression is logged: that is the problems stage's bug.
    """
    from math_verify import verify

    gold_text = normalize_answer(
        gold, other_has_equals="=" in answer, other_is_number=is_plain_number(answer)
    )
    answer_text = normalize_answer(
        answer, other_has_equals="=" in gold, other_is_number=is_plain_number(gold)
    )
    if gold_text == answer_text:
        return Reason.MATCH
    if has_ellipsis(gold_text) or has_ellipsis(answer_text):  # math-verify reads 1, 2, ..., n as 2
        same = canonical_text(gold_text) == canonical_text(answer_text)
        return Reason.MATCH if same else Reason.MISMATCH
    clock = _same_clock_time(gold_text, answer_text)
    if clock is not None:
        return Reason.MATCH if clock else Reason.MISMATCH
    parsed_gold, parsed_answer = _parse(gold_text), _parse(answer_text)
    if _equation_against_value(parsed_gold, parsed_answer) or _tuple_against_set(
        gold_text, parsed_gold, answer_text, parsed_answer
    ):
        return Reason.MISMATCH
    if _has_imaginary_unit(parsed_gold) or (
        _is_constant(parsed_gold) and _has_imaginary_unit(parsed_answer)
    ):
        parsed_gold, parsed_answer = _imaginary(parsed_gold), _imaginary(parsed_answer)
    options = {
        "float_rounding": settings.float_rounding,
        "numeric_precision": settings.numeric_precision,
        "strict": settings.strict,
        "allow_set_relation_comp": settings.allow_set_relation_comp,
        "timeout_seconds": None,
    }
    if verify(parsed_gold, parsed_answer, **options) or verify(
        parsed_answer, parsed_gold, **options
    ):
        tolerated = _numbers_differ(gold_text, parsed_gold, answer_text, parsed_answer)
        renamed = _variables_differ_in_case(gold_text, answer_text)
        return Reason.MISMATCH if tolerated or renamed else Reason.MATCH
    if _decimal_rounds(gold_text, parsed_gold, answer_text, parsed_answer) or _endpoints_round(
        gold_text, answer_text
    ):
        return Reason.MATCH
    if _same_solution_set(parsed_gold, parsed_answer) or _proportional_relations(
        parsed_gold, parsed_answer
    ):
        return Reason.MATCH
    if _same_expression_expanded(parsed_gold, parsed_answer):
        return Reason.MATCH
    if not _has_expression(parsed_gold):
        logger.warning("gold answer %r parses to no expression", gold[:200])
    return Reason.MISMATCH if _has_expression(parsed_answer) else Reason.UNPARSEABLE


def _exact_number(text: str, parsed: list) -> object | None:
    """The sympy number an answer denotes when written without a decimal point or a percent.

    A written decimal may be a rounding, so it keeps math-verify's tolerance; None then, and for
    anything that is not a single number.
    """
    import sympy

    if _INEXACT.search(text):
        return None
    expression = next((item for item in parsed if not isinstance(item, str)), None)
    if not isinstance(expression, sympy.Expr) or not expression.is_number:
        return None
    return expression.doit()


def _numbers_differ(
    gold_text: str, parsed_gold: list, answer_text: str, parsed_answer: list
) -> bool:
    """Whether two answers math-verify called equal are different exact numbers.

    math-verify rounds to `float_rounding` decimals, so ``1/2004!`` equals ``1/2006!`` and
    ``2^{-100}`` equals ``2^{-101}`` (both round to 0). Rationals are compared exactly; other exact
    numbers (``e^{-100}``) to `_EXACT_DIGITS` significant digits.
    """
    import sympy

    gold_value = _exact_number(gold_text, parsed_gold)
    answer_value = _exact_number(answer_text, parsed_answer)
    if gold_value is None or answer_value is None:
        return False
    if gold_value.has(sympy.nan) or answer_value.has(sympy.nan):  # 0/0 is undefined: equal to
        return True  # nothing (math-verify may call 4 0/0 equal to 0, depending on its cache)
    if gold_value.is_Rational and answer_value.is_Rational:
        return gold_value != answer_value
    gold_n, answer_n = sympy.N(gold_value, _EXACT_DIGITS), sympy.N(answer_value, _EXACT_DIGITS)
    if not (gold_n.is_Float and answer_n.is_Float):  # complex, infinite or unevaluated: keep
        return False
    scale = max(abs(gold_n), abs(answer_n))
    return abs(gold_n - answer_n) > scale * sympy.Float(10) ** (5 - _EXACT_DIGITS)


def _raise_timeout(signum: int, frame: object) -> None:
    raise ComparisonTimeout()


def bounded(work: Callable[[], T], soft_timeout_s: float) -> T | None:
    """``work()`` under a SIGALRM of `soft_timeout_s`; None if the alarm fires first.

    Only for a process's main thread (the grader's workers), where the signal is delivered.
    """
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, soft_timeout_s)
    try:
        return work()
    except ComparisonTimeout:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
