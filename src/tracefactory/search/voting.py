"""Answer grouping by grader equivalence, and the votes: MV, weighted MV, best-of-N, pass@1.

Answers are grouped the way the paper groups them (section 4): two final answers are the same when
math-verify says so (``\\frac{1}{2}`` and ``0.5``), not when their strings match. Equivalence is
asked of the project's ``Grader`` (bounded worker processes, verdict cache): answer ``b`` is boxed
and graded against ``a`` as gold, which is math-verify in both directions.

Classes are built from the pairwise verdicts in one of two ways (``evaluate.grouping``): the
transitive closure (default: the classes do not depend on the answers' order), or the official
code's greedy pass (``first_member``: each answer joins the first class whose first member it
equals). They differ only where the grader's equivalence is not transitive.

A vote's winner may be a tie. The paper scores ties as expected accuracy, i.e. as if the tie were
broken uniformly at random; here a group's accuracy is itself the mean correctness of its members
(one member's grade, unless the grader's equivalence is not transitive), and a tie averages groups.
Best-of-N ties (``evaluate.bon_ties``) are averaged the same way, or, as the official ``argmax``,
go to the first response of highest value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations

from tracefactory.schemas import TrajectoryClass
from tracefactory.search.config import BonTies, Grouping
from tracefactory.search.interfaces import Trace

_TIE_TOLERANCE = 1e-5  # absolute, as the paper's code: vote totals this close tie


class AnswerGrouper:
    """Groups the answers of each problem into equivalence classes, through a ``Grader``.

    Args:
        grader: a ``tracefactory.grading.Grader`` (its cache makes repeated pairs free).
    """

    def __init__(self, grader) -> None:
        self.grader = grader

    def group_many(
        self, answer_lists: Sequence[Sequence[str | None]], grouping: Grouping = Grouping.CLOSURE
    ) -> list[list[int | None]]:
        """Per problem, a group index per answer (None: no answer, a class of its own).

        The distinct answers of a problem are compared in sorted order. All comparisons of all
        problems go to the grader in one call, so its workers stay busy.
        """
        distinct = [sorted({a for a in answers if a is not None}) for answers in answer_lists]
        pairs = [(a, b) for values in distinct for a, b in combinations(values, 2)]
        verdicts = self.grader.grade_many(
            [(f"\\boxed{{{b}}}", a) for a, b in pairs], thinking="none"
        )
        same = {
            pair
            for pair, v in zip(pairs, verdicts, strict=True)
            if v.label is TrajectoryClass.CORRECT
        }
        return [
            assign_groups(answers, values, same, grouping)
            for answers, values in zip(answer_lists, distinct, strict=True)
        ]


def assign_groups(
    answers: Sequence[str | None],
    values: list[str],
    same: set[tuple[str, str]],
    grouping: Grouping = Grouping.CLOSURE,
) -> list[int | None]:
    """A group index per answer, from the equivalent pairs ``same`` of the distinct ``values``.

    ``same`` holds ``(a, b)`` with ``a`` before ``b`` in ``values``.
    """
    if grouping == Grouping.FIRST_MEMBER:
        return _first_member(answers, values, same)
    return _closure(answers, values, same)


def _first_member(
    answers: Sequence[str | None], values: list[str], same: set[tuple[str, str]]
) -> list[int | None]:
    """The official greedy pass: each value joins the first group whose first member it equals."""
    firsts: list[str] = []
    index: dict[str, int] = {}
    for value in values:
        index[value] = next(
            (i for i, first in enumerate(firsts) if (first, value) in same), len(firsts)
        )
        if index[value] == len(firsts):
            firsts.append(value)
    return [None if a is None else index[a] for a in answers]


def _closure(
    answers: Sequence[str | None], values: list[str], same: set[tuple[str, str]]
) -> list[int | None]:
    """Union-find over the distinct answers, then a group index per answer."""
    parent = {value: value for value in values}

    def root(value: str) -> str:
        while parent[value] != value:
            parent[value] = parent[parent[value]]
            value = parent[value]
        return value

    for a, b in combinations(values, 2):
        if (a, b) in same:
            parent[root(b)] = root(a)
    roots = {root(v) for v in values}
    index = {r: i for i, r in enumerate(sorted(roots))}
    return [None if a is None else index[root(a)] for a in answers]


def pass_at_1(traces: Sequence[Trace]) -> float:
    """Mean correctness of the traces (0 for none)."""
    return sum(t.correct for t in traces) / len(traces) if traces else 0.0


def pass_at_n(traces: Sequence[Trace]) -> float:
    """Oracle: 1 when any trace is correct (the paper's ``pass``, an upper bound on any vote)."""
    return float(any(t.correct for t in traces))


def vote(traces: Sequence[Trace], groups: Sequence[int | None], weights: Sequence[float]) -> float:
    """Expected accuracy of a (weighted) vote: the heaviest class wins, ties are averaged.

    As in the paper's code, a trace without an answer is a class of its own: it votes with its
    weight and, if it wins (or ties), contributes its own (wrong) outcome. Dropping such traces
    would let a single answered trace win a vote that mostly produced nothing.

    Args:
        traces: graded traces (``correct`` set).
        groups: the answer group of each trace (None: no answer, a singleton class).
        weights: each trace's vote (1 for majority vote, its value for weighted majority vote).

    Returns:
        The accuracy in [0, 1]; 0 for no traces.

    Raises:
        ValueError: a weight is NaN or negative (a value was never computed).
    """
    totals: dict[tuple[str, int], float] = {}
    members: dict[tuple[str, int], list[bool]] = {}
    for index, (trace, group, weight) in enumerate(zip(traces, groups, weights, strict=True)):
        if math.isnan(weight) or weight < 0:
            raise ValueError(f"vote weight must be a number >= 0, got {weight}")
        key = ("answer", group) if group is not None else ("none", index)
        totals[key] = totals.get(key, 0.0) + weight
        members.setdefault(key, []).append(trace.correct)
    if not totals:
        return 0.0
    best = max(totals.values())
    winners = [g for g, w in totals.items() if abs(w - best) < _TIE_TOLERANCE]
    return sum(sum(members[g]) / len(members[g]) for g in winners) / len(winners)


def majority_vote(traces: Sequence[Trace], groups: Sequence[int | None]) -> float:
    """MV: every answered trace has one vote."""
    return vote(traces, groups, [1.0] * len(traces))


def weighted_majority_vote(traces: Sequence[Trace], groups: Sequence[int | None]) -> float:
    """WMV: every answered trace votes with its value."""
    return vote(traces, groups, [t.value for t in traces])


def best_of_n(traces: Sequence[Trace], ties: BonTies = BonTies.AVERAGE) -> float:
    """BoN: the highest-value trace's correctness (answered or not); ties averaged, or the first
    of them (the official ``argmax``)."""
    if not traces:
        return 0.0
    if any(math.isnan(t.value) for t in traces):
        raise ValueError("best_of_n needs every trace's value; one is NaN")
    if ties == BonTies.FIRST:
        return float(max(traces, key=lambda t: t.value).correct)  # max keeps the first maximum
    best = max(t.value for t in traces)
    top = [t for t in traces if abs(t.value - best) < _TIE_TOLERANCE]
    return sum(t.correct for t in top) / len(top)
