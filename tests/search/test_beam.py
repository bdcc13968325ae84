"""Beam-search logic with deterministic implementations of the search's own interfaces."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tracefactory.search.beam import beam_search, select_survivors
from tracefactory.search.compute import ModelShape
from tracefactory.search.config import SearchConfig, SearchSettings, Selection
from tracefactory.search.interfaces import Block, BlockRequest, ScoreItem

SHAPE = ModelShape(non_embedding_params=100, num_layers=2, attention_width=8)
EOS = 0


class CountingSampler:
    """Block ``i`` of a request is the token ``1 + seed % 5`` repeated; EOS after 3 blocks."""

    def __init__(self, block_len: int = 2) -> None:
        self.block_len = block_len
        self.calls = 0

    def __call__(self, requests: list[BlockRequest], delimited: bool = True) -> list[list[Block]]:
        self.calls += 1
        out = []
        for request in requests:
            blocks = []
            for seed in request.seeds:
                token = 1 + seed % 5
                ends = len(request.response_ids) >= 2 * self.block_len
                ids = (token,) * (self.block_len - 1) + ((EOS,) if ends else (token,))
                blocks.append(Block(ids[: request.max_new_tokens], ends))
            out.append(blocks)
        return out


class TokenSumScorer:
    """Value = mean token of the response part (tokens > 0); records what it was asked."""

    def __init__(self) -> None:
        self.shape = SHAPE
        self.tokens_processed = 0
        self.flops = 0.0
        self.items: list[ScoreItem] = []
        self.retained: list[set[int]] = []

    def score(self, items: list[ScoreItem]) -> list[float]:
        self.items += items
        self.tokens_processed += sum(len(i.token_ids) - i.parent_length for i in items)
        return [sum(i.token_ids) / (10 * len(i.token_ids)) for i in items]

    def retain(self, node_ids: set[int]) -> None:
        self.retained.append(node_ids)


def test_select_survivors_pooled_takes_global_top():
    assert select_survivors([0.9, 0.8, 0.1, 0.2], [0, 0, 1, 1], 2, None) == [0, 1]


def test_select_survivors_cap_keeps_one_child_per_parent():
    assert select_survivors([0.9, 0.8, 0.1, 0.2], [0, 0, 1, 1], 2, 1) == [0, 3]


def test_select_survivors_fills_slots_when_cap_cannot():
    assert select_survivors([0.9, 0.8, 0.7], [0, 0, 0], 2, 1) == [0, 1]


def search_settings(budget, selection=Selection.VALUE, max_response_tokens=224, **search):
    """Settings with the paper's pooled top-K unless ``max_children_per_parent`` is given."""
    search = {"max_children_per_parent": None, **search}
    return SearchSettings(
        search=SearchConfig(**search),
        budget=budget,
        selection=selection,
        max_response_tokens=max_response_tokens,
    )


def test_budget_must_be_a_multiple_of_beam_width():
    with pytest.raises(ValidationError, match="multiple of beam_width"):
        search_settings(5, beam_width=2)


@pytest.mark.parametrize("cap", [None, 1])
def test_search_returns_k_finished_beams_per_search(cap):
    settings = search_settings(8, beam_width=2, block_tokens=2, max_children_per_parent=cap)
    scorer = TokenSumScorer()
    traces, tally = beam_search(
        [(5, 6), (7,)], ["a", "b"], settings, CountingSampler(), scorer, SHAPE, run_seed=3
    )
    assert [[len(search) for search in t] for t in traces] == [[4], [4]]
    for problem in traces:
        for trace in problem[0]:
            assert trace.response_ids[-1] == EOS and not trace.truncated
            assert 0 < trace.value < 1
    assert tally.gen_tokens > 0 and tally.value_tokens == scorer.tokens_processed
    assert tally.value_tokens_full > tally.value_tokens  # incremental-style counting pays less
    # The official count: every candidate encoded whole, then every final beam once more.
    finals = [(5, 6) + t.response_ids for t in traces[0][0]] + [
        (7,) + t.response_ids for t in traces[1][0]
    ]
    sequences = [item.token_ids for item in scorer.items] + finals
    assert tally.value_tokens_full == sum(len(s) for s in sequences)
    assert tally.value_flops_full == pytest.approx(
        sum(SHAPE.forward_flops(0, len(s)) for s in sequences)
    )


def test_candidates_are_scored_on_top_of_their_parent():
    scorer = TokenSumScorer()
    settings = search_settings(4, beam_width=2, block_tokens=2)
    beam_search([(5, 6)], ["a"], settings, CountingSampler(), scorer, SHAPE, run_seed=1)
    by_id = {item.node_id: item for item in scorer.items}
    for item in scorer.items:
        if item.parent_id in by_id:  # a later block: the parent's sequence is its prefix
            parent = by_id[item.parent_id]
            assert item.token_ids[: item.parent_length] == parent.token_ids
        else:  # a first block: the parent is the prompt
            assert item.token_ids[: item.parent_length] == (5, 6)


def test_repeated_searches_are_separate_and_deterministic():
    settings = search_settings(4, beam_width=2, block_tokens=2)
    run = [
        beam_search(
            [(1,), (2,)], ["p", "q"], settings, CountingSampler(), TokenSumScorer(), SHAPE, 9, 3
        )[0]
        for _ in range(2)
    ]
    assert [[len(search) for search in problem] for problem in run[0]] == [[2, 2, 2], [2, 2, 2]]
    ids = [[[t.response_ids for t in search] for search in problem] for problem in run[0]]
    assert ids == [[[t.response_ids for t in search] for search in problem] for problem in run[1]]
    assert len({tuple(search) for search in ids[0]}) > 1  # each search has its own seeds


def test_random_control_scores_only_finished_beams():
    scorer = TokenSumScorer()
    settings = search_settings(4, Selection.RANDOM, beam_width=2, block_tokens=2)
    traces, _ = beam_search([(1, 2)], ["p"], settings, CountingSampler(), scorer, SHAPE, 4)
    assert len(scorer.items) == len(traces[0][0]) == 2
    assert all(item.parent_id is None for item in scorer.items)


def test_response_cap_truncates_beams():
    settings = search_settings(2, max_response_tokens=3, beam_width=2, block_tokens=2)
    traces, _ = beam_search([(1,)], ["p"], settings, CountingSampler(), TokenSumScorer(), SHAPE, 0)
    assert all(t.truncated and len(t.response_ids) == 3 for t in traces[0][0])
