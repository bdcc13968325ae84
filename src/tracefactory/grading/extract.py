"""Answer extraction: pure string work on the untrusted response, no math-verify, no sympy.

Rules (the paper, section 3): a response cut by the length cap is incomplete; in a thinking
format only the text after the thinking's closing tag counts (an unclosed thinking section is
incomplete, so unfinished thinking is never rewarded); the answer is the last top-level balanced
``\\boxed{...}`` (or ``\\fbox{...}``) of that text; a finished response without one is wrong; a
final box holding another box (``\\boxed{1 \\boxed{3}}``) is a hedge between two answers, not one
answer, so it is wrong too (reason ``nested_boxed``; math-verify would happily pick the inner box).
Several separate boxes are not a hedge: real responses box each part of a multi-part answer, or
repeat the final answer in another form. Boxes that end the text separated only by commas,
semicolons, ``and``, math delimiters, spaces or line breaks (``\\boxed{1} and \\boxed{2}``,
``\\boxed{k=45}, \\boxed{n=2}``) are one answer, their parts joined by ``, `` (a part repeated
counts once); the last box alone is kept beside it (`Extraction.last_part`), because a gold may
record only the last part asked (``\\boxed{\\text{Yes}}`` then ``\\boxed{4}`` for gold 4).
Otherwise (words between them, ``=``, ``or``) the last box is the answer.

Extraction runs inside the grader's bounded workers, like comparison: the response is untrusted and
can be megabytes. Every function here is linear in the response's length (one regex pass for the
thinking tags and one brace scan for the boxes), so a response of 20,000 unclosed ``\\boxed{``
costs milliseconds, not the minutes a brace match per opening would.
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

# One token of the brace scan: a box opening (\boxed{, \boxed {, \fbox{), a `\\` line break (kept
# apart so `\\{` is a break then a brace, yet `\\boxed{` still opens a box), an escaped brace
# (\{ \}, never changes the depth), or a brace.
_BRACE_TOKEN = re.compile(
    r"(?P<box>\\(?:boxed|fbox)\s*\{)|\\\\(?!(?:boxed|fbox)\s*\{)|\\[{}]|(?P<brace>[{}])"
)
# \boxed 5 (no braces): the answer runs to the next whitespace or `$`.
_BOX_BARE = re.compile(r"\\boxed ([^\s${}]+)")
_BOX_WORD = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_NOT_SPACE = re.compile(r"\S")
# What may stand between the boxes of one multi-part answer: `, `, `; `, ` and `, `\quad`,
# `\text{ and }`, math delimiters (`$`, `\(`, `\]`), spaces and line breaks.
_BOX_JOINER = re.compile(
    r"(?:\s|\$|,|;|\band\b|\\q?quad\b|\\text\s*\{\s*(?:and|,)?\s*\}|\\\\|\\[,;: ()\[\]])*"
)


@dataclass(frozen=True)
class Extraction:
    """What extraction decided: either a final reason (no comparison needed) or an answer.

    Attributes:
        answer: content of the last boxed answer, stripped; None when none was read.
        reason: the final reason when extraction alone decides the verdict (truncated,
            no_think_end, no_boxed); None when `answer` must be compared with the gold answer.
        last_part: for an answer joined from several boxes, the last box's content (compared
            when the joined answer does not match); None for a single box.
    """

    answer: str | None
    reason: Reason | None
    last_part: str | None = None


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


@dataclass(frozen=True)
class _Box:
    """A balanced box: ``text[start:]`` opens it, its content is ``text[content:close]``."""

    start: int
    content: int
    close: int


def _balanced_boxes(text: str) -> list[_Box]:
    """Every balanced braced box of `text`, in one pass (linear time, whatever the nesting).

    A stack of open braces (each a box opening or a plain brace) is popped at every ``}``;
    an opening never closed is simply left on the stack, so a cut-off box costs nothing.
    """
    stack: list[tuple[int, int] | None] = []
    boxes: list[_Box] = []
    for token in _BRACE_TOKEN.finditer(text):
        if token.group("box") is not None:
            stack.append((token.start(), token.end()))
        elif token.group("brace") == "{":
            stack.append(None)
        elif token.group("brace") == "}" and stack:
            opened = stack.pop()
            if opened is not None:
                boxes.append(_Box(opened[0], opened[1], token.start()))
    return boxes


def _top_level(text: str, boxes: list[_Box]) -> list[_Box]:
    """The non-empty boxes not inside another balanced box, in order (boxes nest or are
    disjoint)."""
    found, end = [], -1
    for box in sorted(boxes, key=lambda b: b.start):
        if box.start > end:  # not inside the previous top-level box
            end = box.close
            if text[box.content : box.close].strip():
                found.append(box)
    return found


def _final_run(text: str, top_level: list[_Box]) -> list[_Box]:
    """The last top-level box and the boxes before it joined to it only by `_BOX_JOINER`."""
    run = [top_level[-1]]
    for box in reversed(top_level[:-1]):
        if not _BOX_JOINER.fullmatch(text, box.close + 1, run[0].start):
            break
        run.insert(0, box)
    return run


def _unwrap(text: str, box: _Box, boxes: list[_Box]) -> _Box:
    """The innermost box of a chain that only repeats itself: ``\\boxed{\\boxed{3}}`` -> 3."""
    by_start = {b.start: b for b in boxes if box.start < b.start < box.close}
    while True:
        first = _NOT_SPACE.search(text, box.content, box.close)
        inner = by_start.get(first.start()) if first else None
        if inner is None or text[inner.close + 1 : box.close].strip():
            return box
        box = inner


def final_box(text: str) -> tuple[str, bool, str | None] | None:
    """Content of the last top-level, balanced, non-empty box of `text` (with the boxes joined
    to it as one multi-part answer, see the module docstring), and whether it holds another box
    (``\\boxed{1 \\boxed{3}}``: two candidate answers in one), and the last box's content when
    the answer joins several boxes (else None).

    A box that only wraps another box is unwrapped first. An unbalanced box (cut off) is skipped;
    an empty box (the prompt's own "within \\boxed{}") is not an answer. ``\\boxed 5`` counts
    when it comes after the last braced box.
    """
    boxes = _balanced_boxes(text)
    top_level = _top_level(text, boxes)
    bares = list(_BOX_BARE.finditer(text))
    bare = bares[-1] if bares else None
    if bare is not None and (not top_level or bare.start() > top_level[-1].start):
        return bare.group(1).strip(), False, None
    if not top_level:
        return None
    parts, nested = [], False
    for box in _final_run(text, top_level):
        box = _unwrap(text, box, boxes)
        nested = nested or _BOX_WORD.search(text, box.content, box.close) is not None
        part = text[box.content : box.close].strip()
        if part not in parts:
            parts.append(part)
    return ", ".join(parts), nested, part if len(parts) > 1 else None


def last_boxed(text: str) -> str | None:
    """Content of the final box of `text` (see `final_box`), or None if there is none."""
    box = final_box(text)
    return None if box is None else box[0]


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
    box = final_box(section)
    if box is None:
        return Extraction(answer=None, reason=Reason.NO_BOXED)
    answer, nested, last_part = box
    if nested:
        return Extraction(answer=answer, reason=Reason.NESTED_BOXED)
    return Extraction(answer=answer, reason=None, last_part=last_part)
