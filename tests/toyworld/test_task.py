"""The synthetic task: determinism, disjoint splits, exact answers, slips the checker finds."""

import random

import pytest
from pydantic import ValidationError

from tracefactory.errors import ConfigError
from tracefactory.toyworld.task import (
    SlipKind,
    SlipRates,
    SyntheticTaskConfig,
    check_trace,
    evaluate,
    extract_boxed,
    generate_problems,
    parse_expression,
    split_of,
    write_trace,
)


def test_same_seed_gives_same_problems_and_other_seed_differs():
    first = generate_problems(3, 50, "train")
    assert first == generate_problems(3, 50, "train")
    assert first != generate_problems(4, 50, "train")


def test_splits_are_disjoint_by_expression_whatever_the_seed():
    by_split = {
        split: {row["expression"] for seed in (0, 1) for row in generate_problems(seed, 300, split)}
        for split in ("train", "val", "test", "policy")
    }
    for split, expressions in by_split.items():
        assert all(split_of(expression) == split for expression in expressions)
        for other, other_expressions in by_split.items():
            if other != split:
                assert not expressions & other_expressions


def test_answers_are_exact_values_under_precedence():
    assert evaluate(parse_expression("3+5*4-6"), 7) == 3  # 3 + 20 - 6 = 17 = 3 (mod 7)
    assert evaluate(parse_expression("2-4*3"), 5) == 0  # 2 - 12 = -10 = 0 (mod 5)
    for row in generate_problems(0, 100, "test"):
        assert row["answer"] == str(evaluate(parse_expression(row["expression"]), 7))
        assert row["problem"] == f"{row['expression']}=? (mod 7)"


def test_knobs_shape_the_problems():
    config = SyntheticTaskConfig(modulus=5, operand_min=1, operand_max=4, min_ops=3, max_ops=3)
    rows = generate_problems(0, 40, "val", config)
    assert {row["num_ops"] for row in rows} == {3}
    assert {int(row["answer"]) for row in rows} <= set(range(5))


def test_bad_config_and_split_raise_with_the_reason():
    with pytest.raises(ValidationError, match="prime"):
        SyntheticTaskConfig(modulus=9, operand_max=6)
    with pytest.raises(ConfigError, match="split"):
        generate_problems(0, 1, "dev")
    with pytest.raises(ConfigError, match="distinct"):
        generate_problems(0, 500, "test", SyntheticTaskConfig(min_ops=1, max_ops=1))


def test_clean_trace_is_correct_and_has_no_mistakes():
    rng = random.Random(0)
    for row in generate_problems(0, 50, "policy"):
        response, final = write_trace(row["expression"], 7, rng)
        assert final == row["answer"] == extract_boxed(response)
        assert response.endswith(f"\n</think>\n\\boxed{{{final}}}")
        assert check_trace(row["expression"], response, 7) == []


@pytest.mark.parametrize(
    ("slips", "kind"),
    [
        (SlipRates(precedence=1.0), SlipKind.PRECEDENCE),
        (SlipRates(fact=1.0), SlipKind.FACT),
        (SlipRates(copy=1.0), SlipKind.COPY),
    ],
)
def test_checker_finds_each_injected_slip_and_slips_propagate(slips, kind):
    rng = random.Random(1)
    rows = [r for r in generate_problems(1, 200, "policy") if "*" in r["expression"][2:]]
    wrong = 0
    for row in rows:
        response, final = write_trace(row["expression"], 7, rng, slips)
        errors = check_trace(row["expression"], response, 7)
        if errors:
            assert errors[0] == kind
        wrong += final != row["answer"]
    assert wrong / len(rows) > 0.7  # a slip rarely lands on the right answer by luck


def test_checker_flags_truncated_and_mismatched_responses():
    assert check_trace("2+3", "2+3=5", 7) == [SlipKind.FORMAT]
    assert check_trace("2+3", "2+3=5\n</think>\n\\boxed{4}", 7) == [SlipKind.ANSWER]
