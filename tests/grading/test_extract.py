"""Extraction rules: pure string work, no workers."""

import time

import pytest

from tracefactory.grading import Extraction, Reason, ThinkingFormat, extract
from tracefactory.grading.extract import last_boxed


def test_last_balanced_boxed_wins_and_nested_braces_are_kept():
    text = r"first \boxed{1} then \boxed{\frac{1}{2}} and \boxed{unclosed"
    assert last_boxed(text) == r"\frac{1}{2}"


def test_fbox_bare_boxed_and_escaped_braces():
    assert last_boxed(r"so \fbox{7}") == "7"
    assert last_boxed(r"so \boxed 5 done") == "5"
    assert last_boxed(r"\boxed{\{1,2\}}") == r"\{1,2\}"


def test_empty_box_from_the_prompt_is_not_an_answer():
    assert last_boxed(r"put your final answer within \boxed{}.") is None


def test_r1_open_requires_think_end():
    done = extract(r"reasoning</think> The answer is \boxed{3}.", thinking=ThinkingFormat.R1_OPEN)
    assert (done.answer, done.reason) == ("3", None)
    unfinished = extract(r"still thinking \boxed{3}", thinking=ThinkingFormat.R1_OPEN)
    assert unfinished.reason is Reason.NO_THINK_END


def test_boxed_inside_thinking_is_ignored():
    result = extract(r"<think>maybe \boxed{4}</think> so the answer is 5", thinking="r1")
    assert result.reason is Reason.NO_BOXED


def test_r1_response_that_opens_think_and_never_closes_is_incomplete():
    assert extract(r"<think>hmm \boxed{2}", thinking="r1").reason is Reason.NO_THINK_END
    assert extract(r"no thinking \boxed{2}", thinking="r1").answer == "2"


def test_raw_chat_template_in_response_is_handled_by_r1():
    response = r"<｜User｜>Q? \boxed{}<｜Assistant｜><think>\nx</think>So \boxed{38\%}."
    assert extract(response, thinking="r1").answer == r"38\%"


def test_sky_t1_format():
    response = (
        "<|begin_of_thought|>\nguess \\boxed{1}\n<|end_of_thought|>\n"
        "<|begin_of_solution|>\n\\boxed{2}\n<|end_of_solution|>"
    )
    assert extract(response, thinking="sky_t1").answer == "2"
    assert extract(response, thinking="auto").answer == "2"
    cut = "<|begin_of_thought|>\n\\boxed{1}"
    assert extract(cut, thinking="sky_t1").reason is Reason.NO_THINK_END


@pytest.mark.parametrize("thinking", list(ThinkingFormat))
def test_truncated_is_incomplete_whatever_the_content(thinking):
    result = extract(r"</think>\boxed{3}", thinking=thinking, truncated=True)
    assert (result.answer, result.reason) == (None, Reason.TRUNCATED)


@pytest.mark.parametrize(
    "response",
    [
        "</think>" + "\\boxed{" * 20_000,  # unclosed openings: each used to scan to the end
        "</think>" + "\\fbox{" * 10_000 + "\\boxed {" * 10_000 + "}",
        "</think>" + "{" * 20_000 + "\\boxed{" * 20_000 + "x",
        "</think>" + "\\boxed{" * 20_000 + "x" + "}" * 20_000,  # balanced, 20,000 deep
    ],
)
def test_extraction_is_linear_time_on_adversarial_boxes(response: str):
    start = time.perf_counter()
    extract(response, thinking="r1_open")
    # A bound, not a speed goal: the quadratic scan took 16-300 s on inputs of this size.
    assert time.perf_counter() - start < 8.0


def test_nested_box_is_a_hedge_not_an_answer():
    hedges = [r"\boxed{1 \boxed{3}}", r"\boxed{\boxed{1} or \boxed{3}}", r"\boxed{1, \fbox{3}}"]
    for response in hedges:
        result = extract(response, thinking="none")
        assert result.reason is Reason.NESTED_BOXED, response
    assert extract(r"\boxed{1 \boxed{3}}", thinking="none").answer == r"1 \boxed{3}"


def test_a_box_that_only_wraps_a_box_is_unwrapped():
    for response in [r"\boxed{\boxed{3}}", r"\boxed{ \boxed{ \fbox{3} } }"]:
        assert extract(response, thinking="none") == Extraction(answer="3", reason=None)


def test_double_backslash_before_boxed_still_opens_a_box():
    assert last_boxed(r"line\\boxed{4}") == "4"
    assert last_boxed(r"line\\\boxed{4}") == "4"
    assert last_boxed(r"a \\{ \boxed{5}") == "5"
