"""The embedded default's synthetic task: modular arithmetic expressions with line-by-line traces.

A problem is an expression such as ``3+5*4-6`` over operands ``operand_min``..``operand_max``
evaluated modulo a prime ``modulus`` with the usual precedence. The reference trace reduces one
operator per line, leftmost ``*`` first, else the leftmost operator, and rewrites the whole
remaining expression::

    3+5*4-6=? (mod 7)          <- problem
    5*4=6, 3+6-6               <- one reduction, then the rest of the expression
    3+6=2, 2-6
    2-6=3
    </think>
    \\boxed{3}

Why this task: every step is checkable from the text by a small model. The trace writer
can inject *slips* that later lines faithfully build on, so a slip propagates to a wrong answer:

- precedence slip: the ``+``/``-`` left of a pending ``*`` is reduced first (visible: the line
  reduces an operator whose right operand is followed by ``*``);
- copy slip: one operand of the rewritten rest differs from the line before it;
- fact slip: a wrong result digit (only checkable by knowing the table; kept rare).

With a prime modulus and operands in 2..modulus-1, ``x op b`` is a bijection in ``x`` for every
operator and ``*1`` never hides a precedence slip, so a wrong intermediate value rarely cancels out
(a precedence-slipped trace hits the gold answer ~9% of the time at mod 7 with operands 2..6, vs
~20% with operands 1..6 or mod 5); the policy's lucky-hit rate is measured in the model card.

Splits are disjoint by construction: an expression's split is a pure function of the expression
(a SHA-256 bucket, independent of any seed), so the held-out ``test`` problems can never be drawn
for the policy's training (``policy``) or the value model's data (``train``/``val``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from enum import StrEnum

from pydantic import Field, model_validator

from tracefactory.config import Section
from tracefactory.errors import ConfigError
from tracefactory.seeds import text_seed

TINY_TEMPLATE = "{problem}\n<think>\n"
THINK_CLOSE = "</think>"
SPLITS = ("train", "val", "test", "policy")
# Buckets of sha256(expression) mod 20 per split: 10% test, 10% val, 40% train, 40% policy.
_SPLIT_BUCKETS = {
    "test": range(0, 2),
    "val": range(2, 4),
    "train": range(4, 12),
    "policy": range(12, 20),
}
_MAX_DRAWS_PER_PROBLEM = 200
_LINE_RE = re.compile(r"^(\d)([-+*])(\d)=(\d)(?:, (\d(?:[-+*]\d)*))?$")


class SyntheticTaskConfig(Section):
    """Difficulty knobs of the synthetic problem source (params.yaml ``problems.synthetic``)."""

    modulus: int = Field(7, ge=3, le=10)
    """answer space: results are 0..modulus-1 (a prime)"""
    operand_min: int = Field(2, ge=1, le=9)
    """smallest operand (2 keeps "*1" from hiding a slip)"""
    operand_max: int = Field(6, ge=1, le=9)
    """largest operand (< modulus)"""
    min_ops: int = Field(2, ge=1, le=8)
    """fewest operators per expression (steps in the trace)"""
    max_ops: int = Field(5, ge=1, le=8)
    """most operators per expression"""
    operators: str = "+-*"
    '''operator alphabet, a subset of "+-*"'''

    @model_validator(mode="after")
    def _check_ranges(self) -> SyntheticTaskConfig:
        if self.min_ops > self.max_ops:
            raise ValueError(f"min_ops={self.min_ops} must be <= max_ops={self.max_ops}")
        if not 1 <= self.operand_min <= self.operand_max < self.modulus:
            raise ValueError(
                f"need 1 <= operand_min={self.operand_min} <= operand_max={self.operand_max}"
                f" < modulus={self.modulus}"
            )
        if any(self.modulus % d == 0 for d in range(2, self.modulus)):
            raise ValueError(f"modulus={self.modulus} must be prime (3, 5 or 7)")
        if not self.operators or set(self.operators) - set("+-*"):
            raise ValueError(f"operators={self.operators!r} must be a non-empty subset of '+-*'")
        return self


class SlipKind(StrEnum):
    """Kinds of mistakes in a trace, as injected by the writer and found by ``check_trace``."""

    PRECEDENCE = "precedence"  # a +/- reduced while the * to its right was pending
    FACT = "fact"  # wrong result of a correct reduction
    COPY = "copy"  # the rewritten rest does not match the line before it
    WRONG_OPERANDS = "wrong_operands"  # the reduced pair does not occur in the current expression
    FORMAT = "format"  # a line that does not parse, or a missing </think> / \boxed{}
    ANSWER = "answer"  # the boxed answer differs from the trace's final value


@dataclass(frozen=True)
class SlipRates:
    """Per-step probabilities of each injected slip in reference traces."""

    precedence: float = 0.0
    fact: float = 0.0
    copy: float = 0.0


# An expression state: operands and operators interleaved, e.g. [3, "+", 5, "*", 4].
State = list


def render(state: State) -> str:
    """Write an expression state as text without spaces (``3+5*4``)."""
    return "".join(str(item) for item in state)


def parse_expression(text: str) -> State:
    """Parse ``3+5*4`` into a state; raises ValueError on anything else."""
    if not re.fullmatch(r"\d(?:[-+*]\d)*", text):
        raise ValueError(f"not a single-digit expression: {text!r}")
    return [int(ch) if ch.isdigit() else ch for ch in text]


def apply_op(left: int, op: str, right: int, modulus: int) -> int:
    """One modular reduction."""
    if op == "+":
        return (left + right) % modulus
    if op == "-":
        return (left - right) % modulus
    return (left * right) % modulus


def correct_op_index(state: State) -> int:
    """Position (in ``state``) of the operator the reference reduces next: leftmost ``*`` first."""
    ops = [i for i in range(1, len(state), 2)]
    stars = [i for i in ops if state[i] == "*"]
    return stars[0] if stars else ops[0]


def reduce_at(state: State, op_index: int, result: int) -> State:
    """Replace ``a op b`` at ``op_index`` by ``result``."""
    return state[: op_index - 1] + [result] + state[op_index + 2 :]


def evaluate(state: State, modulus: int) -> int:
    """Exact value of an expression under the reference's precedence."""
    while len(state) > 1:
        i = correct_op_index(state)
        state = reduce_at(state, i, apply_op(state[i - 1], state[i], state[i + 1], modulus))
    return state[0]


def split_of(expression: str) -> str:
    """The split an expression belongs to: a seed-independent hash bucket (see module doc)."""
    bucket = text_seed(expression) % 20
    return next(name for name, buckets in _SPLIT_BUCKETS.items() if bucket in buckets)


def problem_text(expression: str, modulus: int) -> str:
    """The problem statement the policy sees (the prompt is ``TINY_TEMPLATE`` around it)."""
    return f"{expression}=? (mod {modulus})"


def format_prompt(problem: str) -> str:
    """The tiny policy's prompt: the problem, then an opened thinking block (R1 style)."""
    return TINY_TEMPLATE.format(problem=problem)


def random_expression(rng: random.Random, config: SyntheticTaskConfig) -> str:
    """Draw one expression (uniform number of operators, uniform operands and operators)."""
    num_ops = rng.randint(config.min_ops, config.max_ops)
    operands = range(config.operand_min, config.operand_max + 1)
    state: State = [rng.choice(operands)]
    for _ in range(num_ops):
        state += [rng.choice(config.operators), rng.choice(operands)]
    return render(state)


def _split_rng(seed: int, split: str) -> random.Random:
    return random.Random(text_seed(f"toyworld/{seed}/{split}"))


def generate_problems(
    seed: int, count: int, split: str, config: SyntheticTaskConfig | None = None
) -> list[dict]:
    """Draw ``count`` distinct problems of one split, deterministically for ``seed``.

    Args:
        seed: Run seed; the same (seed, count, split, config) always gives the same rows.
        count: Number of distinct problems.
        split: One of ``train``, ``val``, ``test`` (the problems table) or ``policy`` (only for
            training the tiny policy). Splits never share an expression, whatever the seed.
        config: Difficulty knobs; defaults to ``SyntheticTaskConfig()``.

    Returns:
        Rows ``{"problem", "answer", "split", "expression", "num_ops"}``; ``answer`` is the gold
        value as a LaTeX string (a single integer).

    Raises:
        ConfigError: Unknown split, or the split has too few distinct expressions for ``count``.
    """
    config = config or SyntheticTaskConfig()
    if split not in SPLITS:
        raise ConfigError(f"split={split!r} is not one of {SPLITS}")
    rng = _split_rng(seed, split)
    seen: set[str] = set()
    rows: list[dict] = []
    for _ in range(count * _MAX_DRAWS_PER_PROBLEM):
        if len(rows) == count:
            break
        expression = random_expression(rng, config)
        if expression in seen or split_of(expression) != split:
            continue
        seen.add(expression)
        state = parse_expression(expression)
        rows.append(
            {
                "problem": problem_text(expression, config.modulus),
                "answer": str(evaluate(state, config.modulus)),
                "split": split,
                "expression": expression,
                "num_ops": len(state) // 2,
            }
        )
    if len(rows) < count:
        raise ConfigError(
            f"only {len(rows)} distinct {split!r} problems found for count={count}; raise max_ops "
            f"or operand_max (config: {config.model_dump()})"
        )
    return rows


def _different_digit(rng: random.Random, digit: int, modulus: int) -> int:
    return rng.choice([d for d in range(modulus) if d != digit])


def write_trace(
    expression: str, modulus: int, rng: random.Random, slips: SlipRates = SlipRates()
) -> tuple[str, str]:
    """Write a reference response for ``expression``, with slips injected at the given rates.

    Later lines always follow from what was written before (a slip propagates, as a policy's own
    mistake would).

    Returns:
        ``(response, final_value)``: the text after the prompt up to and including
        ``\\boxed{...}`` (the EOS token is the tokenizer's business), and the boxed value.
    """
    state = parse_expression(expression)
    lines = []
    while len(state) > 1:
        op_index = correct_op_index(state)
        if op_index > 1 and rng.random() < slips.precedence:
            op_index -= 2  # the +/- left of the leftmost * (precedence slip)
        left, op, right = state[op_index - 1 : op_index + 2]
        result = apply_op(left, op, right, modulus)
        if rng.random() < slips.fact:
            result = _different_digit(rng, result, modulus)
        state = reduce_at(state, op_index, result)
        if len(state) > 1 and rng.random() < slips.copy:
            slot = rng.choice([i for i in range(0, len(state), 2) if i != op_index - 1])
            state[slot] = _different_digit(rng, state[slot], modulus)
        rest = f", {render(state)}" if len(state) > 1 else ""
        lines.append(f"{left}{op}{right}={result}{rest}")
    final = str(state[0])
    return "\n".join(lines) + f"\n{THINK_CLOSE}\n\\boxed{{{final}}}", final


def drill_text(rng: random.Random, modulus: int, operators: str, num_facts: int = 16) -> str:
    """A "fact drill": ``?`` then random ``a op b=c`` lines, so the table is learnt densely.

    A prototype policy learnt result digits only once half of each batch was drills.
    """
    facts = []
    for _ in range(num_facts):
        left, right, op = rng.randrange(modulus), rng.randrange(modulus), rng.choice(operators)
        facts.append(f"{left}{op}{right}={apply_op(left, op, right, modulus)}")
    return "?\n" + "\n".join(facts)


def extract_boxed(response: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (no nested braces in this task), or None."""
    start = response.rfind("\\boxed{")
    if start < 0:
        return None
    end = response.find("}", start)
    return response[start + len("\\boxed{") : end] if end >= 0 else None


def check_trace(expression: str, response: str, modulus: int) -> list[SlipKind]:
    """Every mistake in a response, line by line, judging each line against the one before it.

    Used to measure the policy's error kinds (model card) and the lucky-hit rate.
    """
    head, sep, _ = response.partition(THINK_CLOSE)
    if not sep or extract_boxed(response) is None:
        return [SlipKind.FORMAT]
    state, errors = parse_expression(expression), []
    for line in head.strip("\n").split("\n"):
        match = _LINE_RE.match(line)
        if match is None or len(state) == 1:
            return [*errors, SlipKind.FORMAT]
        left, op, right, result, rest = match.groups()
        written = parse_expression(rest) if rest else [int(result)]
        errors += _check_line(state, (int(left), op, int(right), int(result)), written, modulus)
        state = written
    if len(state) > 1:
        errors.append(SlipKind.FORMAT)
    elif extract_boxed(response) != str(state[0]):
        errors.append(SlipKind.ANSWER)
    return errors


def _check_line(
    state: State, line: tuple[int, str, int, int], written: State, modulus: int
) -> list[SlipKind]:
    """Mistakes of one line ``left op right=result, written`` applied to ``state``."""
    left, op, right, result = line
    pairs = [i for i in range(1, len(state), 2) if state[i - 1 : i + 2] == [left, op, right]]
    correct = correct_op_index(state)
    errors = []
    if not pairs:
        errors.append(SlipKind.WRONG_OPERANDS)
    elif correct not in pairs:
        errors.append(SlipKind.PRECEDENCE)
    if apply_op(left, op, right, modulus) != result:
        errors.append(SlipKind.FACT)
    if pairs:
        reduced = reduce_at(state, correct if correct in pairs else pairs[0], result)
        if reduced != written:
            errors.append(SlipKind.COPY)
    return errors
