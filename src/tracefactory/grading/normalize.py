"""String rewrites applied to both answers before math-verify parses them (inside the workers).

Each rewrite fixes a way math-verify misreads a common answer form (compare.py lists them all);
each is anchored so that it cannot change what an answer means:

- thousands separated by a space, thin space or control space (``1 000``, ``1\\,000``): digits
  joined, only between groups of exactly three digits (not before ``/``: ``1 100/3`` is mixed).
  Comma groups (``1,000``) are left to math-verify, which reads a bare ``1,000`` as 1000 and
  ``(1,000)`` as a tuple, as it should.
- a repeating decimal (``0.\\overline{3}``, ``0.\\bar{3}``, ``0.\\dot{3}``, ``0.(3)``): the whole
  answer is rewritten to its exact fraction (math-verify drops the bar and reads 0.3).
- Unicode math (``–5``, ``2√2``, ``∞``, ``≤``): the LaTeX command (math-verify reads only some);
  an en dash only where a minus sign can stand, so the range ``1–2`` never becomes ``-1``.
- ``\\sqrt(2)`` (a radicand in parentheses, which math-verify drops: ``4\\sqrt(2)`` read as 4):
  ``\\sqrt{2}``.
- one text wrapper around a whole answer that starts with a number (``\\text{5 cm}``,
  ``\\textbf{12 apples}``): removed, so it parses like ``5 cm`` (math-verify reads ``\\text{5}``
  but not ``\\text{5 cm}``). Words stay wrapped: ``\\text{no}`` bare would parse as n*o = o*n.
- a mixed number (``1 1/2``, ``1\\frac{1}{2}``): its fraction; unit words after a number
  (``10 weeks``, ``10 cm^2``) when the other answer is a plain number; ``90^\\circ`` as
  ``\\frac{90\\pi}{180}`` inside trigonometry; a bare ``%`` (a LaTeX comment) escaped.
- markdown bold ``**73**``; E-notation ``1.87e6`` (math-verify reads ``e`` as Euler's number);
  a side condition ``..., \\quad \\text{for } \\omega^2 \\neq 4``; a function-name prefix
  ``x(t)=`` against a gold without ``=`` (math-verify only drops a bare ``x=``).
"""

from __future__ import annotations

import re
from fractions import Fraction

# `, \quad \text{for } \omega^2 \neq 4`: a side condition after the answer, not part of it.
_SIDE_CONDITION = re.compile(
    r"\s*,?\s*(?:\\q?quad\s*)*\\(?:text|mbox|textrm)\{\s*(?:for|if|when|where|provided)\b.*$"
)
_MARKDOWN_BOLD = re.compile(r"\*\*(.+?)\*\*")
# `10%`: in LaTeX a bare % starts a comment, and math-verify reads it as 10 and as 0.1; escaped, it
# is the number 10 (docs/grading.md: a percent is its number).
_BARE_PERCENT = re.compile(r"(?<!\\)%")
_E_NOTATION = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*[eE]\s*([+-]?\d+)$")
# `f(x) =`, `x(t)=`, `Y(s) =`, `v_0(t) =` at the start of an answer: a named function, not an
# equation to solve.
_NAMED_PREFIX = re.compile(
    r"^\s*[A-Za-z](?:_\{?\w+\}?)?\s*(?:\\left)?\(\s*\w+\s*(?:\\right)?\)\s*="
)
# A thin, medium, thick or control space (or `~`, `{,}`, a plain space) between digit groups of
# three; not before a `/` or a point, so the mixed number `1 100/3` keeps its parts.
_SPACED_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:(?:\\[,:; ]|~|\{,\}| )\d{3})+(?![\d/.])")
_GROUP_SEPARATOR = re.compile(r"\\[,:; ]|~|\{,\}| ")
# -1.2\overline{34}, 0.\bar{3}, 0.\dot{3}, 0.(3): sign, integer part, fixed digits, repetend.
_REPEATING = re.compile(
    r"^([+-]?)(\d*)\.(\d*)(?:\\(?:overline|bar|dot)\s*\{(\d+)\}|\\(?:bar|dot)\s*(\d)|\((\d+)\))$"
)
_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u00d7": "\\times ",
    "\u00b7": "\\cdot ",
    "\u22c5": "\\cdot ",
    "\u00f7": "\\div ",
    "\u221e": "\\infty ",
    "\u03c0": "\\pi ",
    "\u2264": "\\le ",
    "\u2265": "\\ge ",
    "\u2260": "\\neq ",
    "\u00b0": "^\\circ ",
}
# An en dash where a minus sign can stand (not `1–2`, a range): start, space, bracket, `,`, `=`.
_DASH_AS_MINUS = re.compile(r"(^|[\s(\[{,=])\u2013")
# \sqrt(2): not LaTeX (the radicand takes braces), and math-verify then reads 4\sqrt(2) as 4.
_PAREN_ROOT = re.compile(r"\\sqrt\s*\(([^()]*)\)")
_UNICODE_ROOT = re.compile(r"√\s*(\d+|[A-Za-z]|\{[^{}]*\}|\([^()]*\))")
_ELLIPSIS = re.compile(r"\\[lc]?dots|\.\.\.|\u2026")
_SPACING = re.compile(r"\s+|\\[,:; !]|\\left|\\right|~")
# Only around a number and its unit or noun: `\text{no}` unwrapped would parse as n*o == o*n.
_TEXT_WRAPPER = re.compile(
    r"^\\(?:text|textbf|textrm|textit|mathrm|mathbf|mbox)\{\s*([+-]?\.?\d[^{}]*)\}$"
)


# 1 1/2, -2\frac{3}{4}: a whole number and a proper fraction written side by side.
_MIXED_NUMBER = re.compile(
    r"^([+-]?)(\d+)(?:\s+(\d+)\s*/\s*(\d+)|\s*\\[dt]?frac\s*\{(\d+)\}\s*\{(\d+)\})$"
)
# A number followed only by unit words (`10 weeks`, `10 cm^2`, `3 \text{ m/s}`): words of two or
# more letters (`cm`, `weeks`) or text wrappers, with powers and `/`. Single letters stay (they
# may be variables), and so do function names.
_UNIT_WORD = (
    r"(?:\\(?:text|mathrm|mbox|textrm)\s*\{[^{}]*\}"
    r"|(?!(?:pi|sin|cos|tan|log|ln|exp|sqrt)\b)[A-Za-z]{2,})"
)
_NUMBER_WITH_UNIT = re.compile(
    r"^([+-]?(?:\d[\d,]*(?:\.\d+)?|\.\d+))\s*(?:\\[,;: ]|~)*\s*"
    + rf"(?:{_UNIT_WORD}\s*(?:\^\s*\{{?-?\d\}}?)?\s*(?:/|\\cdot)?\s*)+$"
)
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)$")
# `\sin(90^\circ - x)`: inside trigonometry a degree is pi/180 radians (elsewhere `30^\circ` is
# the answer 30).
_TRIG = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)(?![A-Za-z])")
_DEGREES = re.compile(r"(\d+(?:\.\d+)?)\s*\^\s*(?:\{\s*\\circ\s*\}|\\circ)")


def _mixed_to_fraction(text: str) -> str:
    """``1 1/2`` -> ``\\frac{3}{2}``; any other text is returned unchanged."""
    match = _MIXED_NUMBER.match(text)
    if match is None:
        return text
    sign, whole = match.group(1), int(match.group(2))
    numerator = int(match.group(3) or match.group(5))
    denominator = int(match.group(4) or match.group(6))
    if denominator == 0 or numerator >= denominator:  # `2 5/3` is not a mixed number
        return text
    value = Fraction(whole * denominator + numerator, denominator)
    return f"{'-' if sign == '-' else ''}\\frac{{{value.numerator}}}{{{value.denominator}}}"


def is_plain_number(text: str) -> bool:
    """Whether `text` (an answer, maybe in ``$...$``) is one written number: ``10``, ``-2.5``."""
    return _PLAIN_NUMBER.match(text.strip().strip("$").strip()) is not None


def _join_thousands(text: str) -> str:
    """``1\\,000\\,000`` -> ``1000000`` (groups of three digits only)."""
    return _SPACED_THOUSANDS.sub(lambda m: _GROUP_SEPARATOR.sub("", m.group()), text)


def _repeating_to_fraction(text: str) -> str:
    """``0.1\\overline{6}`` -> ``\\frac{1}{6}``; any other text is returned unchanged."""
    match = _REPEATING.match(text)
    if match is None:
        return text
    sign, whole, fixed = match.group(1), match.group(2) or "0", match.group(3)
    repetend = next(group for group in match.groups()[3:] if group)
    # x = whole.fixed(repetend)...: shift the repetend in front of the point and subtract.
    shifted = int(whole + fixed + repetend) - int(whole + fixed)
    value = Fraction(shifted, 10 ** len(fixed) * (10 ** len(repetend) - 1))
    sign = "-" if sign == "-" and value else ""
    return f"{sign}\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _latex_unicode(text: str) -> str:
    """Unicode math symbols as the LaTeX commands math-verify knows."""
    text = _DASH_AS_MINUS.sub(r"\1-", text)
    text = _UNICODE_ROOT.sub(lambda m: f"\\sqrt{{{m.group(1).strip('{}()')}}}", text)
    for symbol, latex in _UNICODE.items():
        text = text.replace(symbol, latex)
    return text.strip()


def has_ellipsis(text: str) -> bool:
    """Whether `text` is a pattern with an ellipsis (``1, 3, 5, \\ldots, 2n-1``)."""
    return _ELLIPSIS.search(text) is not None


def canonical_text(text: str) -> str:
    """`text` without spaces or sizing commands, every ellipsis written ``...``."""
    return _ELLIPSIS.sub("...", _SPACING.sub("", text))


def normalize_answer(text: str, *, other_has_equals: bool, other_is_number: bool) -> str:
    """The string-level rewrites of this module's docstring, in a fixed order.

    Args:
        text: one answer (gold or extracted), bare LaTeX, possibly in ``$...$``.
        other_has_equals: the answer it is compared with contains ``=`` (then a ``x(t)=``
            prefix is kept).
        other_is_number: the answer it is compared with is a plain number (then unit words
            after a number are dropped).

    Returns:
        The rewritten answer.
    """
    text = text.strip().strip("$").strip()
    text = _MARKDOWN_BOLD.sub(r"\1", text)
    text = _BARE_PERCENT.sub(r"\\%", text)
    text = _SIDE_CONDITION.sub("", text)
    text = _PAREN_ROOT.sub(r"\\sqrt{\1}", _latex_unicode(text))
    wrapped = _TEXT_WRAPPER.match(text)
    if wrapped:
        text = wrapped.group(1).strip()
    text = _mixed_to_fraction(_repeating_to_fraction(_join_thousands(text)))
    if other_is_number:
        unit = _NUMBER_WITH_UNIT.match(text)
        if unit:
            text = unit.group(1)
    if _TRIG.search(text):
        text = _DEGREES.sub(r"\\frac{\1\\pi}{180}", text)
    e_notation = _E_NOTATION.match(text)
    if e_notation:
        text = f"{e_notation.group(1)}\\times10^{{{e_notation.group(2)}}}"
    if not other_has_equals:
        prefix = _NAMED_PREFIX.match(text)
        if prefix and text.count("=") == 1:
            text = text[prefix.end() :].strip()
    return text
