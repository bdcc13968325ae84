"""Answer extraction: pure string work on the untrusted response, no math-verify, no sympy.

Rules (issue 3; paper section 3): a response cut by the length cap is incomplete; in a thinking
format only the text after the thinking's closing tag counts (an unclosed thinking section is
incomplete, so unfinished thinking is never rewarded); the answer is the last top-level balanced
``\\boxed{...}`` (or ``\\fbox{...}``) of that text; a finished response without one is wrong.
Extraction is cheap and safe, so it runs in the calling process; only comparison goes to workers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from tracefactory.grading.verdict import Reason


class ThinkingFormat(StrEnum):
    """Where a response's thinking section is, so that only the final part is graded.

    - ``r1_open``: DeepSeek-R1 template, whose prompt already ends with ``<think>``: the response
      must contain ``</think>``; without it the thinking never finished. The pipeline's default.
    - ``r1``: ``<think>...</think>`` written in the response itself (or in a raw chat template
      echoed into it). ``</think>`` is required once ``<think>`` appears; a response with neither
      tag did not think and is graded whole.
    - ``sky_t1``: Sky-T1 / SkyThought ``<|begin_of_thought|>...<|end_of_thought|>`` format, same
      rule as ``r1`` with those tags.
    - ``none``: no thinking section; the whole response is graded.
    - ``auto``: pick ``sky_t1``, ``r1`` or ``none`` from the tags found in the response. For
      ad-hoc grading of mixed files; never for ``r1_open`` output, where the tag is in the prompt.
    """

    R1_OPEN = "r1_open"
    R1 = "r1"
    SKY_T1 = "sky_t1"
    NONE = "none"
    AUTO = "auto"


_THINKING_TAGS: dict[ThinkingFormat, tuple[str, str]] = {
    ThinkingFormat.R1_OPEN: ("<think>", "</think>"),
    ThinkingFormat.R1: ("<think>", "</think>"),
    ThinkingFormat.SKY_T1: ("<|begin_of_thought|>", "<|end_of_thought|>"),
}

# \boxed{...}, \boxed {...}, \fbox{...}; the brace is matched by hand below.
_BOX_OPENING = re.compile(r"\\(?:boxed|fbox)\s*\{")
# \boxed 5 (no braces): the answer runs to the next whitespace or `$`.
_BOX_BARE = re.compile(r"\\boxed ([^\s${}]+)")


@dataclass(frozen=True)
class Extraction:
    """What extraction decided: either a final reason (no comparison needed) or an answer.

    Attributes:
        answer: content of the last boxed answer, stripped; None when none was read.
        reason: the final reason when extraction alone decides the verdict (truncated,
            no_think_end, no_boxed); None when `answer` must be compared with the gold answer.
    """

    answer: str | None
    reason: Reason | None


def resolve_thinking(response: str, thinking: ThinkingFormat | str) -> ThinkingFormat:
    """Turn ``auto`` into the concrete format whose tags the response contains."""
    thinking = ThinkingFormat(thinking)
    if thinking is not ThinkingFormat.AUTO:
        return thinking
    if "<|begin_of_thought|>" in response or "<|end_of_thought|>" in response:
        return ThinkingFormat.SKY_T1
    if "<think>" in response or "</think>" in response:
        return ThinkingFormat.R1
    return ThinkingFormat.NONE


def final_section(response: str, thinking: ThinkingFormat | str) -> str | None:
    """The part of `response` after its thinking section, or None if thinking never closed."""
    thinking = resolve_thinking(response, thinking)
    if thinking is ThinkingFormat.NONE:
        return response
    open_tag, close_tag = _THINKING_TAGS[thinking]
    last_close = response.rfind(close_tag)
    last_open = response.rfind(open_tag)
    if last_close < 0:
        # With r1_open the opening tag sits in the prompt, so no closing tag = unfinished.
        opened = thinking is ThinkingFormat.R1_OPEN or last_open >= 0
        return None if opened else response
    if last_open > last_close:  # thinking re-opened after the last close and never closed
        return None
    return response[last_close + len(close_tag) :]


def _matching_brace(text: str, open_index: int) -> int | None:
    """Index of the `}` closing the `{` at `open_index`, or None if unbalanced (skips `\\{`)."""
    depth = 0
    index = open_index
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2  # an escaped character (\{, \}) never changes the depth
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last top-level, balanced, non-empty ``\\boxed{}``/``\\fbox{}`` in `text`.

    Boxes nested inside a box belong to it; an unbalanced box (cut off) is skipped; an empty box
    (e.g. the prompt's own "within \\boxed{}") is not an answer.
    """
    found: tuple[int, str] | None = None
    position = 0
    while (match := _BOX_OPENING.search(text, position)) is not None:
        brace = match.end() - 1
        close = _matching_brace(text, brace)
        if close is None:
            position = match.end()
            continue
        content = text[brace + 1 : close].strip()
        if content:
            found = (match.start(), content)
        position = close + 1
    for bare in _BOX_BARE.finditer(text):
        if found is None or bare.start() > found[0]:
            found = (bare.start(), bare.group(1).strip())
    return None if found is None else found[1]


def extract(
    response: str, *, thinking: ThinkingFormat | str, truncated: bool = False
) -> Extraction:
    """Decide what of `response` can be graded.

    Args:
        response: the generated text (untrusted; only string operations are applied).
        thinking: where the thinking section is (see `ThinkingFormat`).
        truncated: the generator stopped at the length cap (finish_reason "length").

    Returns:
        An `Extraction` with a final reason (truncated, no_think_end, no_boxed) or an answer.
    """
    if truncated:
        return Extraction(answer=None, reason=Reason.TRUNCATED)
    section = final_section(response, thinking)
    if section is None:
        return Extraction(answer=None, reason=Reason.NO_THINK_END)
    answer = last_boxed(section)
    if answer is None:
        return Extraction(answer=None, reason=Reason.NO_BOXED)
    return Extraction(answer=answer, reason=None)
