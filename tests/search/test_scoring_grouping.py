"""The incremental KV-cached scorer against full re-encoding, and answer grouping by the grader,
with the real ValueModel and the real Grader (math-verify in worker processes)."""

from __future__ import annotations

import random

import pytest
import torch

from tracefactory.grading import Grader
from tracefactory.search.interfaces import ScoreItem
from tracefactory.search.scoring import FullValueScorer, IncrementalValueScorer
from tracefactory.search.voting import AnswerGrouper


def test_incremental_scorer_matches_full_reencode_with_fewer_tokens(value_model_dir):
    from tracefactory.valuemodel.model import ValueModel

    torch.set_num_threads(1)
    model = ValueModel.from_pretrained(value_model_dir)
    full, incremental = FullValueScorer(model), IncrementalValueScorer(model, max_batch_tokens=200)
    expected = score_rounds(full)
    assert score_rounds(incremental) == pytest.approx(expected, abs=1e-5)
    assert len({round(v, 6) for v in expected}) > 1  # values differ: the test can fail
    assert incremental.tokens_processed < full.tokens_processed
    assert incremental.flops < full.flops


def test_answers_are_grouped_by_math_equivalence():
    with Grader(workers=1) as grader:
        groups = AnswerGrouper(grader).group_many(
            [["\\frac{1}{2}", "0.5", "3", None, "1/2"], ["x", "x"]]
        )
    first, second = groups
    assert first[0] == first[1] == first[4] != first[2]
    assert first[3] is None
    assert second[0] == second[1]


def score_rounds(scorer, rounds: int = 4) -> list[float]:
    """Four rounds of two children per beam (each round keeps one per beam); all values."""
    rng = random.Random(0)
    sequences = {
        i: tuple(rng.randrange(3, 90) for _ in range(rng.randint(3, 12))) for i in range(4)
    }
    frontier, next_id, values = list(sequences), 100, []
    for _ in range(rounds):
        items = []
        for parent in frontier:
            for _child in range(2):
                block = tuple(rng.randrange(3, 90) for _ in range(rng.randint(1, 7)))
                sequence = sequences[parent] + block
                items.append(ScoreItem(next_id, parent, len(sequences[parent]), sequence))
                sequences[next_id], next_id = sequence, next_id + 1
        values += scorer.score(items)
        frontier = [item.node_id for item in items[::2]]
        scorer.retain(set(frontier))
    return values


def test_bounded_cache_re_encodes_past_its_budget_with_the_same_values(value_model_dir):
    from tracefactory.valuemodel.model import ValueModel

    torch.set_num_threads(1)
    model = ValueModel.from_pretrained(value_model_dir)
    unbounded = IncrementalValueScorer(model, max_batch_tokens=200)
    bounded = IncrementalValueScorer(model, max_batch_tokens=200, max_cache_tokens=40)
    expected = score_rounds(FullValueScorer(model))
    assert score_rounds(unbounded) == pytest.approx(expected, abs=1e-5)
    assert score_rounds(bounded) == pytest.approx(expected, abs=1e-5)
    assert unbounded.peak_cached_tokens > 40  # the budget binds in this test
    assert 0 < bounded.peak_cached_tokens <= 40 and bounded.uncached_nodes > 0
    assert bounded.tokens_processed > unbounded.tokens_processed  # the re-encoding it paid
