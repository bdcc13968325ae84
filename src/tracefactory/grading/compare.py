"""Answer comparison with math-verify. Runs only inside grader worker processes.

Model output is untrusted: parsing it can build huge sympy objects, and even ``str()`` of one can
hang (NOTES-toolchain.md). So this module runs in workers (the parent imports it only for
`ComparisonSettings`), and only reasons and extracted answers (strings) ever leave a worker. The
worker bounds each comparison with its own SIGALRM (a worker is a fresh interpreter running tasks
in its main thread, where signals work) and a memory limit; the parent's hard kill is the backstop
for a hang no signal interrupts.

Known math-verify failure modes and what we do (each covered in tests/grading):

- leading zeros ``016`` vs ``16``, ``\\text{13}``, units (``864 \\mbox{ inches}^2``), percent
  (``38\\%`` equals ``38``; ``38\\%`` does not equal ``0.38``), intervals, tuples, unordered root
  lists, ``\\pm`` (expanded to both roots), ``x=3`` vs ``3``: math-verify 0.9 already handles them
  with the settings below; the tests pin that down.
- markdown bold ``**73**``: stripped before parsing (math-verify reads it as nothing).
- E-notation ``1.87e6``: math-verify reads ``e`` as Euler's number; rewritten to
  ``1.87\\times10^{6}``.
- a side condition ``A = ..., \\quad \\text{for } \\omega^2 \\neq 4``: cut at the ``\\text{for``.
- a function-name prefix ``x(t)=...`` / ``v(r)=...`` against a gold without ``=``: the prefix is
  dropped (math-verify only drops a bare-symbol ``x=``).
- math-verify is asymmetric (``verify(gold, pred)``); we accept either direction.
- math-verify turns any exception into "not equal" (a crash would read as a wrong answer); we
  call it with ``raise_on_error`` so that the worker answers ``error`` instead.
"""

from __future__ import annotations

import logging
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tracefactory.grading.verdict import Reason

logger = logging.getLogger(__name__)
T = TypeVar("T")

# `, \quad \text{for } \omega^2 \neq 4`: a side condition after the answer, not part of it.
_SIDE_CONDITION = re.compile(
    r"\s*,?\s*(?:\\q?quad\s*)*\\(?:text|mbox|textrm)\{\s*(?:for|if|when|where|provided)\b.*$"
)
_MARKDOWN_BOLD = re.compile(r"\*\*(.+?)\*\*")
_E_NOTATION = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*[eE]\s*([+-]?\d+)$")
# `f(x) =`, `x(t)=`, `Y(s) =`, `v_0(t) =` at the start of an answer: a named function, not an
# equation to solve.
_NAMED_PREFIX = re.compile(
    r"^\s*[A-Za-z](?:_\{?\w+\}?)?\s*(?:\\left)?\(\s*\w+\s*(?:\\right)?\)\s*="
)


@dataclass(frozen=True)
class ComparisonSettings:
    """math-verify settings, fixed per grader version (they are part of the cache key).

    Attributes:
        float_rounding: decimal places floats are rounded to before comparing (math-verify).
        numeric_precision: significant digits for numeric equality via evalf (math-verify).
        strict: variables must match by name, sets never equal tuples (math-verify).
        allow_set_relation_comp: an interval may equal an inequality, ``(0,\\infty)`` vs ``x>0``.
    """

    float_rounding: int = 6
    numeric_precision: int = 15
    strict: bool = True
    allow_set_relation_comp: bool = True


class ComparisonTimeout(BaseException):
    """Raised by the worker's alarm. A BaseException, so math-verify's ``except Exception``
    (which turns any error into ``False``) cannot swallow it and call a timeout a mismatch."""


def normalize_answer(text: str, *, other_has_equals: bool) -> str:
    """String-level fixes applied before parsing (see the module docstring for why each)."""
    text = text.strip().strip("$").strip()
    text = _MARKDOWN_BOLD.sub(r"\1", text)
    text = _SIDE_CONDITION.sub("", text)
    e_notation = _E_NOTATION.match(text)
    if e_notation:
        text = f"{e_notation.group(1)}\\times10^{{{e_notation.group(2)}}}"
    if not other_has_equals:
        prefix = _NAMED_PREFIX.match(text)
        if prefix and text.count("=") == 1:
            text = text[prefix.end() :].strip()
    return text


def _parse(latex: str) -> list:
    """math-verify parse of one bare answer, its own timeout off (the worker's alarm bounds it)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    return parse(
        f"${latex}$",
        extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()],
        parsing_timeout=None,
        raise_on_error=True,
    )


def _has_expression(parsed: list) -> bool:
    """True if math-verify produced a sympy object, not just its raw-string fallback."""
    return any(not isinstance(item, str) for item in parsed)


def compare_answers(gold: str, answer: str, settings: ComparisonSettings) -> Reason:
    """Compare an extracted answer with the gold answer, symmetrically.

    Returns:
        ``match`` if either ``verify(gold, answer)`` or ``verify(answer, gold)`` holds (or the
        normalized strings are equal); otherwise ``unparseable`` if the answer yields no sympy
        expression (math-verify fell back to its raw string), else ``mismatch``. A gold answer
        without an expression is logged: that is the problems stage's bug.
    """
    from math_verify import verify

    gold_text = normalize_answer(gold, other_has_equals="=" in answer)
    answer_text = normalize_answer(answer, other_has_equals="=" in gold)
    if gold_text == answer_text:
        return Reason.MATCH
    parsed_gold, parsed_answer = _parse(gold_text), _parse(answer_text)
    options = {
        "float_rounding": settings.float_rounding,
        "numeric_precision": settings.numeric_precision,
        "strict": settings.strict,
        "allow_set_relation_comp": settings.allow_set_relation_comp,
        "timeout_seconds": None,
        "raise_on_error": True,  # a crash is the worker's `error`, not a silent "not equal"
    }
    if verify(parsed_gold, parsed_answer, **options) or verify(
        parsed_answer, parsed_gold, **options
    ):
        return Reason.MATCH
    if not _has_expression(parsed_gold):
        logger.warning("gold answer %r parses to no expression", gold[:200])
    return Reason.MISMATCH if _has_expression(parsed_answer) else Reason.UNPARSEABLE


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
