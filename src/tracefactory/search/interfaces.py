"""The two small interfaces the search algorithms run on, and the records they produce.

Search code never touches an engine or a model directly: it asks a ``BlockSampler`` for blocks and a
``ValueScorer`` for values. The engine-backed sampler (``sampling.py``) and the value-model scorers
(``scoring.py``) implement them for real runs; tests drive the algorithms with small deterministic
implementations of these same interfaces.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

from tracefactory.search.compute import ModelShape


@dataclass(frozen=True)
class BlockRequest:
    """Continue one prefix: ``len(seeds)`` blocks, block ``i`` sampled with ``seeds[i]``.

    ``prompt_ids + response_ids`` is the text so far; ``max_new_tokens`` is already clipped so the
    response never passes the response cap.
    """

    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    seeds: tuple[int, ...]
    max_new_tokens: int


@dataclass(frozen=True)
class Block:
    """One sampled block: its tokens, and whether the trace ended with it (EOS generated)."""

    token_ids: tuple[int, ...]
    ended: bool


class BlockSampler(Protocol):
    """Samples blocks: a block stops at EOS, at a delimiter (line blocks) or at max_new_tokens."""

    def __call__(self, requests: list[BlockRequest], delimited: bool = True) -> list[list[Block]]:
        """One list of blocks per request, in the order of its seeds (``delimited=False``: stop
        only at EOS or ``max_new_tokens``, for whole independent samples)."""
        ...


@dataclass(frozen=True)
class ScoreItem:
    """A sequence to score, and where it branched from (so a scorer can reuse the parent's work).

    Attributes:
        node_id: unique id of this sequence within a search run.
        parent_id: the node it extends (None: nothing to reuse).
        parent_length: tokens of ``token_ids`` that belong to the parent.
        token_ids: the whole sequence (prompt + response so far).
    """

    node_id: int
    parent_id: int | None
    parent_length: int
    token_ids: tuple[int, ...]


class ValueScorer(Protocol):
    """Scores sequences by value (P(success) at the last token) and counts the tokens it encoded."""

    shape: ModelShape  # the value model's, for FLOPs (compute.py)
    tokens_processed: int  # value-model tokens actually fed to the model (padding excluded)
    flops: float  # value-model FLOPs of that work (compute.py)

    def score(self, items: list[ScoreItem]) -> list[float]:
        """Values of ``items``, in order."""
        ...

    def retain(self, node_ids: set[int]) -> None:
        """Only these nodes may be extended later: anything cached for other nodes can go."""
        ...


@dataclass
class Trace:
    """A finished response of a method: what the vote and the grader need."""

    response_ids: tuple[int, ...]
    value: float  # value at the last token (NaN when the method never scored it)
    truncated: bool  # hit the response cap without EOS
    answer_key: str | None = None  # filled by grading: the extracted answer (None: no answer)
    correct: bool = False  # filled by grading
    label: int = 2  # filled by grading: the verdict's TrajectoryClass (2: incomplete)
    group: int | None = None  # filled by voting: the answer's equivalence class


_node_ids = itertools.count()


def new_node_id() -> int:
    """A node id unique within this process (scorers key their caches by it)."""
    return next(_node_ids)
