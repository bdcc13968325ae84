"""The paper's own evaluation (``grader.mode: official``), for reproducing its tables exactly.

The value-guided-search release (github.com/kaiwenw/value-guided-search) grades a response so:

1. the text after the last ``</think>`` when there is one, otherwise the whole text (a response
   cut by the length cap, or one whose thinking never closed, is graded like any other);
2. the content of the last ``\\boxed{``, read by counting every ``{`` and ``}`` (escaped ones
   too) up to the brace that closes it, stripped; empty when that box is never closed;
3. an empty answer or gold is wrong; otherwise math-verify's ``parse`` of ``$answer$`` and
   ``$gold$`` (default extraction, no rewrites) and ``sympy_expr_eq`` on every pair of parsed
   forms, both ways, with float rounding 5 and numeric precision 5, strict, each pair under
   math-verify's own 1 s timeout; an exception or a timeout makes that pair unequal.

This module re-implements those rules (no code is copied); tests/grading/test_official_mode.py
checks that it gives the verdicts the release's own functions recorded on a corpus of ours.
Differences from the release that cannot change a verdict: thinking is cut with ``rfind`` (the
release's regex is quadratic in the response length) and the box scan is one linear pass.

Runs inside the grader's workers, like compare.py. math-verify's timeouts use SIGALRM, so the
worker's own soft alarm is not armed around an official comparison; the pool's hard deadline
remains the backstop.
"""

from __future__ import annotations

import itertools

from tracefactory.grading.verdict import Reason

_THINK_END = "</think>"
_BOX_OPEN = "\\boxed{"
_PRECISION = 5  # the release's float_rounding and numeric_precision
_PAIR_TIMEOUT_S = 1  # the release's timeout per pair of parsed forms, seconds


def official_answer(response: str) -> str:
    """The answer the release extracts: the last ``\\boxed{``'s balanced content, or ''."""
    end = response.rfind(_THINK_END)
    text = response if end < 0 else response[end + len(_THINK_END) :]
    start = text.rfind(_BOX_OPEN)
    if start < 0:
        return ""
    start += len(_BOX_OPEN)
    depth = 1
    for index in range(start, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:index].strip()
    return ""


def official_extract(response: str) -> tuple[Reason | None, str | None]:
    """``(no_boxed, None)`` when the release extracts nothing, else ``(None, answer)``."""
    answer = official_answer(response)
    return (Reason.NO_BOXED, None) if answer == "" else (None, answer)


def official_compare(gold: str, answer: str) -> Reason:
    """``match`` when the release's symmetric math-verify check holds, else ``mismatch``."""
    from math_verify import parse

    if gold == "" or answer == "":
        return Reason.MISMATCH
    parsed_gold, parsed_answer = parse(f"${gold}$"), parse(f"${answer}$")
    equal = _any_pair_equal(parsed_gold, parsed_answer) or _any_pair_equal(
        parsed_answer, parsed_gold
    )
    return Reason.MATCH if equal else Reason.MISMATCH


def _any_pair_equal(parsed_gold: list, parsed_answer: list) -> bool:
    return any(
        _pair_equal(gold, answer) for gold, answer in itertools.product(parsed_gold, parsed_answer)
    )


def _pair_equal(gold: object, answer: object) -> bool:
    """One pair of parsed forms: sympy equality, or equal non-empty strings; False on an
    exception or after `_PAIR_TIMEOUT_S`."""
    from math_verify.errors import TimeoutException
    from math_verify.grader import sympy_expr_eq
    from math_verify.utils import timeout
    from sympy import Basic, MatrixBase

    @timeout(timeout_seconds=_PAIR_TIMEOUT_S)
    def compare() -> bool:
        if isinstance(gold, Basic | MatrixBase) and isinstance(answer, Basic | MatrixBase):
            # The release passes `strict` positionally, where math-verify >= 0.8 has
            # `allow_set_relation_comp`: so both are on. Both directions are tried, so this
            # equals math-verify 0.7's comparison (relation vs set in one direction only).
            return sympy_expr_eq(
                gold, answer, _PRECISION, _PRECISION, allow_set_relation_comp=True, strict=True
            )
        if isinstance(gold, str) and isinstance(answer, str):
            return bool(gold.strip()) and gold.strip() == answer.strip()
        return False

    try:
        return compare()
    except (Exception, TimeoutException):
        return False
