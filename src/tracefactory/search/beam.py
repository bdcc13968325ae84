"""Value-guided block-wise beam search (VGS), its random-selection control, and DVTS.

The paper's search (arXiv 2505.17373, section 4, algorithm 1): with budget ``N`` and beam width
``w``, ``K = N / w`` beams are kept. Every unfinished beam samples ``w`` blocks; each candidate
(beam + block) is scored by the value model at its last token; the top ``K - finished`` of *all*
candidates survive (pooled, not per parent). A candidate that ended (EOS) or reached the response
cap is frozen as finished and keeps its slot; the search ends when all ``K`` slots are finished, and
the final answer is a weighted majority vote (or best-of-N) over the ``K`` finished beams.

Options beyond the paper, measured in the embedded default's toy world: ``max_children_per_parent``
caps how many kept beams one parent may supply (pooled top-K collapsed onto one parent there and
lost 14 points to MV; one child per parent won 6), and ``line_blocks`` ends a block at a delimiter
(a line) rather than at a fixed token count. ``beam_search`` runs ``searches`` independent
searches of budget ``N`` per problem in lockstep and returns each search's beams; DVTS pools R of
them (total budget ``N * R``, the paper's budget semantics) when votes are counted. The control
``Selection.RANDOM`` runs the same search choosing survivors at random instead of by value (the
final vote is still value-weighted), so the report shows what the value model's guidance adds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from tracefactory.search.compute import ComputeTally, ModelShape
from tracefactory.search.config import SearchSettings, Selection
from tracefactory.search.independent import score_traces
from tracefactory.search.interfaces import (
    BlockRequest,
    BlockSampler,
    ScoreItem,
    Trace,
    ValueScorer,
    new_node_id,
)
from tracefactory.seeds import derive_seed, unit_interval


@dataclass
class _Beam:
    node_id: int  # the scorer's id of prompt + response (shared by the root beams)
    beam_id: int  # identity for the per-parent cap
    response: tuple[int, ...] = ()
    value: float = float("nan")
    finished: bool = False
    truncated: bool = False
    parent: int = -1


@dataclass
class _Search:
    prompt: tuple[int, ...]
    key: str
    active: list[_Beam]
    finished: list[_Beam] = field(default_factory=list)
    step: int = 0


def beam_search(
    prompts: Sequence[tuple[int, ...]],
    problem_keys: Sequence[str],
    settings: SearchSettings,
    sampler: BlockSampler,
    scorer: ValueScorer,
    policy_shape: ModelShape,
    run_seed: int,
    searches: int = 1,
) -> tuple[list[list[list[Trace]]], ComputeTally]:
    """Run ``searches`` independent beam searches per problem, all in lockstep (batched).

    Returns:
        Per problem, per search, its finished beams (valued at their last token), and the
        compute of the whole run.
    """
    tally = ComputeTally()
    if not prompts:
        return [], tally
    runs = []
    for prompt, key in zip(prompts, problem_keys, strict=True):
        for r in range(searches):
            root = new_node_id()
            beams = [_Beam(root, new_node_id()) for _ in range(settings.beams)]
            runs.append(_Search(tuple(prompt), f"{key}/{r}", beams))
            tally.gen_flops += policy_shape.forward_flops(0, len(prompt))
    while any(s.active for s in runs):
        live = [s for s in runs if s.active]
        candidates = _expand(live, settings, sampler, policy_shape, run_seed, tally)
        scores = _score(live, candidates, settings, scorer, run_seed, tally)
        for search, children, values in zip(live, candidates, scores, strict=True):
            _advance(search, children, values, settings)
        scorer.retain({b.node_id for s in runs for b in s.active})
    finished = [b for s in runs for b in s.finished]
    traces = {id(b): Trace(b.response, b.value, b.truncated) for b in finished}
    if settings.selection is Selection.RANDOM:  # the final vote is still value-weighted
        items = [
            ScoreItem(new_node_id(), None, 0, s.prompt + b.response)
            for s in runs
            for b in s.finished
        ]
        score_traces(scorer, items, [traces[id(b)] for b in finished], tally)
    else:  # the official code scores every final beam whole once more before the vote
        for s in runs:
            for b in s.finished:
                tally.reencode(scorer.shape, len(s.prompt) + len(b.response))
    per_search = [[traces[id(b)] for b in s.finished] for s in runs]
    return [per_search[i : i + searches] for i in range(0, len(runs), searches)], tally


def _expand(searches, settings, sampler, policy_shape, run_seed, tally) -> list[list[_Beam]]:
    """Sample ``w`` blocks for every active beam; return each search's candidates."""
    requests = []
    for search in searches:
        for index, beam in enumerate(search.active):
            seeds = tuple(
                derive_seed(run_seed, "search", search.key, search.step, index, child)
                for child in range(settings.search.beam_width)
            )
            room = settings.max_response_tokens - len(beam.response)
            requests.append(
                BlockRequest(
                    search.prompt, beam.response, seeds, min(settings.search.block_tokens, room)
                )
            )
    blocks = iter(sampler(requests, delimited=settings.search.line_blocks))
    candidates = []
    for search in searches:
        children = []
        for beam in search.active:
            context = len(search.prompt) + len(beam.response)
            for block in next(blocks):
                response = beam.response + block.token_ids
                capped = len(response) >= settings.max_response_tokens
                tally.gen_tokens += len(block.token_ids)
                tally.gen_flops += policy_shape.forward_flops(context, len(block.token_ids))
                children.append(
                    _Beam(
                        node_id=new_node_id(),
                        beam_id=new_node_id(),
                        response=response,
                        finished=block.ended or capped,
                        truncated=capped and not block.ended,
                        parent=beam.beam_id,
                    )
                )
        candidates.append(children)
    return candidates


def _score(searches, candidates, settings, scorer, run_seed, tally) -> list[list[float]]:
    """Selection scores of every candidate: values (one batched call) or random draws."""
    if settings.selection is Selection.RANDOM:
        return [
            [unit_interval(run_seed, "random", s.key, s.step, i) for i in range(len(children))]
            for s, children in zip(searches, candidates, strict=True)
        ]
    items, parents = [], {b.beam_id: b for s in searches for b in s.active}
    for search, children in zip(searches, candidates, strict=True):
        for child in children:
            parent = parents[child.parent]
            sequence = search.prompt + child.response
            prefix = len(search.prompt) + len(parent.response)
            items.append(ScoreItem(child.node_id, parent.node_id, prefix, sequence))
            tally.reencode(scorer.shape, len(sequence))
    tokens_before, flops_before = scorer.tokens_processed, scorer.flops
    values = iter(scorer.score(items))
    tally.value_tokens += scorer.tokens_processed - tokens_before
    tally.value_flops += scorer.flops - flops_before
    scores = []
    for children in candidates:
        scores.append([next(values) for _ in children])
        for child, value in zip(children, scores[-1], strict=True):
            child.value = value
    return scores


def _advance(search: _Search, children: list[_Beam], scores: list[float], settings) -> None:
    """Keep the best candidates in the free slots; finished ones are frozen."""
    slots = settings.beams - len(search.finished)
    kept = select_survivors(
        scores, [c.parent for c in children], slots, settings.search.max_children_per_parent
    )
    search.active = []
    for index in kept:
        (search.finished if children[index].finished else search.active).append(children[index])
    search.step += 1


def select_survivors(
    scores: Sequence[float], parents: Sequence[int], slots: int, cap: int | None
) -> list[int]:
    """Indices of the ``slots`` best candidates, at most ``cap`` per parent.

    Ties keep candidate order. If the cap leaves slots empty (fewer parents than slots), they are
    filled with the best remaining candidates regardless of parent, so the budget is always used.
    """
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    taken: list[int] = []
    per_parent: Counter[int] = Counter()
    for index in order:
        if len(taken) == slots:
            return taken
        if cap is None or per_parent[parents[index]] < cap:
            taken.append(index)
            per_parent[parents[index]] += 1
    chosen = set(taken)
    taken += [i for i in order if i not in chosen][: slots - len(taken)]
    return taken
