"""Independent sampling: N whole traces per problem, each scored once by the value model.

The baselines of the paper (section 4) all vote over these traces: pass@1 (their mean
correctness), majority vote, best-of-N by value, weighted majority vote (voting.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from tracefactory.search.compute import ComputeTally, ModelShape
from tracefactory.search.interfaces import (
    BlockRequest,
    BlockSampler,
    ScoreItem,
    Trace,
    ValueScorer,
    new_node_id,
)
from tracefactory.seeds import derive_seed


def sample_independent(
    prompts: Sequence[tuple[int, ...]],
    problem_keys: Sequence[str],
    samples: int,
    sampler: BlockSampler,
    scorer: ValueScorer | None,
    max_response_tokens: int,
    policy_shape: ModelShape,
    run_seed: int,
) -> tuple[list[list[Trace]], ComputeTally]:
    """Sample ``samples`` whole traces per prompt and score each at its last token.

    Args:
        prompts: prompt token ids per problem.
        problem_keys: a stable key per problem (seeds derive from it, the run seed and the index).
        samples: traces per problem.
        sampler: the policy's block sampler (called with ``delimited=False``).
        scorer: the value scorer (None: values stay NaN; only pass@1 and MV can be computed).
        max_response_tokens: the response cap (a trace that reaches it is truncated).
        policy_shape: the policy's shape, for FLOPs.
        run_seed: the run's seed.

    Returns:
        Traces per problem, and the compute spent on all of them.
    """
    requests = [
        BlockRequest(
            prompt_ids=tuple(prompt),
            response_ids=(),
            seeds=tuple(derive_seed(run_seed, "independent", key, i) for i in range(samples)),
            max_new_tokens=max_response_tokens,
        )
        for prompt, key in zip(prompts, problem_keys, strict=True)
    ]
    blocks = sampler(requests, delimited=False)
    tally = ComputeTally()
    traces: list[list[Trace]] = []
    items: list[ScoreItem] = []
    for prompt, problem_blocks in zip(prompts, blocks, strict=True):
        prompt_node = new_node_id()
        tally.gen_flops += policy_shape.forward_flops(0, len(prompt))
        problem_traces = []
        for block in problem_blocks:
            truncated = not block.ended and len(block.token_ids) >= max_response_tokens
            problem_traces.append(Trace(block.token_ids, float("nan"), truncated))
            tally.gen_tokens += len(block.token_ids)
            tally.gen_flops += policy_shape.forward_flops(len(prompt), len(block.token_ids))
            sequence = tuple(prompt) + block.token_ids
            items.append(ScoreItem(new_node_id(), prompt_node, len(prompt), sequence))
        traces.append(problem_traces)
    if scorer is not None:
        score_traces(scorer, items, [t for problem in traces for t in problem], tally)
    return traces, tally


def score_traces(
    scorer: ValueScorer, items: list[ScoreItem], traces: list[Trace], tally: ComputeTally
) -> None:
    """Set each trace's value from its item's score, and add the scorer's work to ``tally`` (and
    the official count: each item encoded whole)."""
    tokens_before, flops_before = scorer.tokens_processed, scorer.flops
    for item in items:
        tally.reencode(scorer.shape, len(item.token_ids))
    for trace, value in zip(traces, scorer.score(items), strict=True):
        trace.value = value
    scorer.retain(set())
    tally.value_tokens += scorer.tokens_processed - tokens_before
    tally.value_flops += scorer.flops - flops_before
