"""The paper's cleaning rules as polars expressions, and the answer check.

OpenR1-Math (~94K problems) was cut to 49,394 problems "with exactly one automatically checkable
boxed answer": no multiple choice, no multi-part or multi-question items, no links or images, no
empty or over-long statements, and a gold answer math-verify can read. Each rule is an expression
that is true for the rows it drops; the first rule that fires names the row's `DropReason`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import unicodedata
from enum import StrEnum

import polars as pl

from tracefactory.errors import ConfigError
from tracefactory.problems.config import CleaningConfig

logger = logging.getLogger(__name__)


class DropReason(StrEnum):
    """Why a problem was dropped; the report counts ``dropped_<reason>``."""

    EMPTY_PROBLEM = "empty_problem"
    PROBLEM_TOO_LONG = "problem_too_long"
    LINK = "link"
    IMAGE = "image"
    MULTIPLE_CHOICE = "multiple_choice"
    MULTI_PART = "multi_part"
    MULTI_QUESTION = "multi_question"
    EMPTY_ANSWER = "empty_answer"
    MULTIPLE_ANSWERS = "multiple_answers"
    PROSE_ANSWER = "prose_answer"
    UNPARSEABLE_ANSWER = "unparseable_answer"
    DUPLICATE = "duplicate"
    NEAR_DUPLICATE = "near_duplicate"
    CONTAMINATED = "contaminated"


_LINK = r"(?i)https?://|www\.[a-z0-9-]+\.[a-z]"
_IMAGE = r"(?i)!\[[^\]]*\]\(|<img\b|\\includegraphics|\.(?:png|jpe?g|gif|svg|bmp)\b|cdn\.mathpix"
# Option markers: (A) (B) (C) ... or lines starting "A." / "B)" (at least three of them).
_OPTION_PAREN = r"(?:^|[^\w\\])\(\s*[A-E]\s*\)"  # not dot(A) in [asy] code
_OPTION_LINE = r"(?m)^\s*[A-E]\s*[\.\):]\s"
_OPTION_TEXTBF = r"\\textbf\{\s*\(\s*[A-E]\s*\)"
# A letter (or "(C)", "\textbf{(C)}") as the whole answer: the item was multiple choice.
_LETTER_ANSWER = r"^\s*\$?\s*(?:\\text(?:bf)?\{)?\s*\(?\s*[A-E]\s*\)?\s*\}?\s*\$?\s*$"
_PART_A = r"(?m)(?:\(\s*a\s*\)|^\s*a\s*\)|\(\s*i\s*\)|\b[Pp]art\s*\(?\s*(?:a|1|I)\b)"
_PART_B = r"(?m)(?:\(\s*b\s*\)|^\s*b\s*\)|\(\s*ii\s*\)|\b[Pp]art\s*\(?\s*(?:b|2|II)\b)"
_NUMBERED_ITEM = r"(?m)^\s*\(?[1-9]\s*[\.\)]\s"
_MULTI_ANSWER = r"\\boxed.*\\boxed|;|\\quad|\\text\{\s*(?:and|or)\s*\}|\s(?:and|or)\s"
_TEXT_WRAPPER = r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}"
# After unwrapping \text{}: no digit, no LaTeX command, and a word of 3+ letters (proof, yes).
_PROSE = r"^[^\d\\]*[A-Za-z]{3,}[^\d\\]*$"


def normalize_text(text: str) -> str:
    """The text that problem ids and exact dedupe are computed on.

    NFKC, lower case, ``$`` removed (inline math delimiters vary between copies of one problem),
    and runs of whitespace collapsed: copies that differ only in these are one problem.
    """
    text = unicodedata.normalize("NFKC", text).lower().replace("$", "")
    return " ".join(text.split())


def problem_id(text: str) -> str:
    """Stable id of a problem: first 16 hex digits of sha256 of its normalized text."""
    return hashlib.sha256(normalize_text(text).encode()).hexdigest()[:16]


def rule_expressions(config: CleaningConfig) -> list[tuple[DropReason, pl.Expr]]:
    """The enabled text rules, in order, as (reason, expression true for dropped rows)."""
    problem, answer = pl.col("problem").fill_null(""), pl.col("answer").fill_null("")
    rules: list[tuple[DropReason, pl.Expr]] = [
        (DropReason.EMPTY_PROBLEM, problem.str.strip_chars().str.len_chars() == 0),
    ]
    if config.max_problem_chars is not None:
        too_long = problem.str.len_chars() > config.max_problem_chars
        rules.append((DropReason.PROBLEM_TOO_LONG, too_long))
    if config.drop_links:
        rules.append((DropReason.LINK, problem.str.contains(_LINK)))
    if config.drop_images:
        rules.append((DropReason.IMAGE, problem.str.contains(_IMAGE)))
    if config.drop_multiple_choice:
        options = (
            (problem.str.count_matches(_OPTION_PAREN) >= 3)
            | (problem.str.count_matches(_OPTION_LINE) >= 3)
            | problem.str.contains(_OPTION_TEXTBF)
            | answer.str.contains(_LETTER_ANSWER)
        )
        rules.append((DropReason.MULTIPLE_CHOICE, options))
    if config.drop_multi_part:
        parts = (problem.str.contains(_PART_A) & problem.str.contains(_PART_B)) | (
            problem.str.count_matches(_NUMBERED_ITEM) >= 2
        )
        rules.append((DropReason.MULTI_PART, parts))
    if config.max_question_marks is not None:
        questions = problem.str.count_matches(r"\?") > config.max_question_marks
        rules.append((DropReason.MULTI_QUESTION, questions))
    rules.append((DropReason.EMPTY_ANSWER, answer.str.strip_chars().str.len_chars() == 0))
    if config.drop_multiple_answers:
        rules.append((DropReason.MULTIPLE_ANSWERS, answer.str.contains(_MULTI_ANSWER)))
    if config.drop_prose_answers:
        unwrapped = answer.str.replace_all(_TEXT_WRAPPER, "$1").str.strip_chars()
        rules.append((DropReason.PROSE_ANSWER, unwrapped.str.contains(_PROSE)))
    return rules


def text_drop_reason(config: CleaningConfig) -> pl.Expr:
    """One expression naming the first rule each row fails (null: the row passes every rule)."""
    rules = rule_expressions(config)
    chain = pl.when(rules[0][1]).then(pl.lit(str(rules[0][0])))
    for reason, condition in rules[1:]:
        chain = chain.when(condition).then(pl.lit(str(reason)))
    return chain.otherwise(pl.lit(None, dtype=pl.String)).alias("drop_reason")


def answer_parses(answer: str, timeout_s: int) -> bool:
    """Whether math-verify reads ``$answer$`` as something it can compare (bounded by its timeout).

    Runs in this process: gold answers come from the configured dataset (short, not model output),
    and math-verify's own SIGALRM timeout bounds each call. The parsed object is never printed
    (sympy's printer can hang outside any timeout).

    Raises:
        ConfigError: called outside the main thread, where math-verify's timeout cannot work.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    if threading.current_thread() is not threading.main_thread():
        raise ConfigError(
            "the gold-answer check runs math-verify with a signal timeout, which works only in "
            "the main thread: run the problems stage in-process (it is a single-shard stage)"
        )
    parsed = parse(
        f"${answer.strip().strip('$')}$",
        extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()],
        parsing_timeout=timeout_s,
    )
    # parse returns [sympy object, matched string]; an answer it cannot read comes back as the
    # bare string alone (``\\frac{`` -> ["\\frac{"]), so "checkable" means a non-string is there.
    return any(not isinstance(item, str) for item in parsed)


def unparseable_reasons(answers: list[str], timeout_s: int) -> list[str | None]:
    """``unparseable_answer`` for each answer math-verify cannot read, else None."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # it logs whole inputs on timeouts
    return [
        None if answer_parses(a, timeout_s) else str(DropReason.UNPARSEABLE_ANSWER) for a in answers
    ]
