"""Value scoring in batches: a full re-encode reference and an incremental, KV-cached scorer.

The paper's evaluator re-encodes a candidate's whole prefix with the value model, one sequence at
a time. During a search, a candidate is its parent beam plus one new block, and the parent was
already encoded when it was scored. ``IncrementalValueScorer`` keeps each live beam's keys and
values, and encodes only the new block on top of them: the value-model tokens of a search drop from
``sum(len(prefix + block))`` to ``sum(len(block))`` (plus each prompt once). Both scorers count what
they fed to the model, so the saving is measured, not assumed (benchmarks/bench_value_scoring.py).

Batching different beams together: parents' caches have different lengths, so they are
left-padded to the longest and masked; new blocks are right-padded. Positions are counted over
unmasked tokens, so padding changes no value beyond float rounding.

Memory is bounded by ``max_cache_tokens``: a node's cache holds its whole sequence (a 1.5B model
keeps 28 KiB per token in bfloat16, so one 16K-token beam is ~0.45 GiB), and a search at N=256
keeps 128 beams plus their children per problem. A node that would pass the budget is not cached;
its children are then encoded whole, in batches, like the full scorer: slower, never wrong.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from tracefactory.models import cache_keyword
from tracefactory.search.compute import ModelShape, model_shape
from tracefactory.search.interfaces import ScoreItem

logger = logging.getLogger(__name__)

_LayerKV = tuple[torch.Tensor, torch.Tensor]  # keys, values: (heads, T, head_dim) each


class FullValueScorer:
    """Scores every sequence from scratch (the paper's way), batched by length.

    Args:
        value_model: a ``tracefactory.valuemodel.model.ValueModel``.
        max_batch_tokens: padded tokens per forward pass.
    """

    def __init__(self, value_model, max_batch_tokens: int = 16384) -> None:
        self.value_model = value_model
        self.max_batch_tokens = max_batch_tokens
        self.shape: ModelShape = model_shape(value_model.model)
        self.tokens_processed = 0
        self.flops = 0.0

    def score(self, items: list[ScoreItem]) -> list[float]:
        if not items:
            return []
        sequences = [list(item.token_ids) for item in items]
        for seq in sequences:
            self.tokens_processed += len(seq)
            self.flops += self.shape.forward_flops(0, len(seq))
        return self.value_model.values(sequences, max_batch_tokens=self.max_batch_tokens)

    def retain(self, node_ids: set[int]) -> None:
        """Nothing is cached."""


@dataclass
class _CachedNode:
    length: int  # tokens covered by the cache
    layers: list[_LayerKV]


class IncrementalValueScorer:
    """Scores a candidate from its parent's cached keys and values plus its new tokens.

    A node whose parent is not cached (a prompt, a beam whose cache was dropped) first has the
    parent part encoded and cached, once per parent. ``retain`` frees the caches of beams the
    search discarded; a scored node's cache is kept until then.

    Args:
        value_model: a ``tracefactory.valuemodel.model.ValueModel`` (its backbone must accept a
            ``DynamicCache``, as transformers decoders do).
        max_batch_tokens: padded tokens (cached + new) per forward pass.
        max_cache_tokens: tokens of cached keys and values kept at most (None: unbounded).
    """

    def __init__(
        self, value_model, max_batch_tokens: int = 16384, max_cache_tokens: int | None = None
    ) -> None:
        self.value_model = value_model
        self.max_batch_tokens = max_batch_tokens
        self.max_cache_tokens = max_cache_tokens
        self.shape: ModelShape = model_shape(value_model.model)
        self.tokens_processed = 0
        self.flops = 0.0
        self.cached_tokens = 0  # tokens held in the cache now
        self.peak_cached_tokens = 0  # the most ever held (for the run report)
        self.uncached_nodes = 0  # nodes not cached because the budget was full
        self._cache: dict[int, _CachedNode] = {}

    def score(self, items: list[ScoreItem]) -> list[float]:
        if not items:
            return []
        self._prime_parents(items)
        values = [0.0] * len(items)
        order = sorted(range(len(items)), key=lambda i: len(items[i].token_ids), reverse=True)
        for chunk in self._chunks(order, items):
            chunk_items = [items[i] for i in chunk]
            parents = [self._cache.get(item.parent_id) for item in chunk_items]
            for i, value in zip(chunk, self._encode(chunk_items, parents), strict=True):
                values[i] = value
        return values

    def retain(self, node_ids: set[int]) -> None:
        self._cache = {k: v for k, v in self._cache.items() if k in node_ids}
        self.cached_tokens = sum(node.length for node in self._cache.values())

    def _fits(self, tokens: int) -> bool:
        """Whether ``tokens`` more cached tokens stay within the budget."""
        return self.max_cache_tokens is None or self.cached_tokens + tokens <= self.max_cache_tokens

    def _store(self, node_id: int, node: _CachedNode) -> None:
        """Cache a node if the budget allows (else its children are re-encoded whole)."""
        if not self._fits(node.length):
            self.uncached_nodes += 1
            return
        self._cache[node_id] = node
        self.cached_tokens += node.length
        self.peak_cached_tokens = max(self.peak_cached_tokens, self.cached_tokens)

    def _prime_parents(self, items: list[ScoreItem]) -> None:
        """Encode and cache each uncached parent prefix once (e.g. the prompt of a new search),
        as far as the budget holds them: priming a prefix that cannot be kept would be waste."""
        missing: dict[int, ScoreItem] = {}
        room = 0
        for item in items:
            if item.parent_id is None or item.parent_id in self._cache:
                continue
            if item.parent_length > 0 and item.parent_id not in missing:
                if not self._fits(room + item.parent_length):
                    continue
                room += item.parent_length
                prefix = item.token_ids[: item.parent_length]
                missing[item.parent_id] = ScoreItem(item.parent_id, None, 0, prefix)
        if missing:
            self.score(list(missing.values()))

    def _chunks(self, order: list[int], items: list[ScoreItem]) -> list[list[int]]:
        chunks, start = [], 0
        while start < len(order):
            longest = len(items[order[start]].token_ids)
            count = max(1, self.max_batch_tokens // max(longest, 1))
            chunks.append(order[start : start + count])
            start += count
        return chunks

    @torch.no_grad()
    def _encode(self, items: list[ScoreItem], parents: list[_CachedNode | None]) -> list[float]:
        """One forward pass over new tokens on top of left-padded parent caches."""
        past = [p.length if p is not None else 0 for p in parents]
        new = [list(item.token_ids[n:]) for item, n in zip(items, past, strict=True)]
        if any(not tokens for tokens in new):
            raise ValueError("IncrementalValueScorer: a node adds no tokens to its parent")
        past_width, new_width = max(past), max(len(t) for t in new)
        device = self.value_model.device
        input_ids = torch.zeros((len(items), new_width), dtype=torch.long)
        mask = torch.zeros((len(items), past_width + new_width), dtype=torch.long)
        for b, (n_past, tokens) in enumerate(zip(past, new, strict=True)):
            input_ids[b, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            mask[b, past_width - n_past : past_width + len(tokens)] = 1
            self.tokens_processed += len(tokens)
            self.flops += self.shape.forward_flops(n_past, len(tokens))
        stacked = _stack_caches(parents, past_width, device) if past_width > 0 else None
        probs, cache = _forward_cached(self.value_model, input_ids.to(device), mask.to(device),
                                       stacked)  # fmt: skip
        for b, item in enumerate(items):
            if not self._fits(len(item.token_ids)):
                self.uncached_nodes += 1
                continue
            start, end = past_width - past[b], past_width + len(new[b])
            layers = [
                (layer.keys[b, :, start:end].clone(), layer.values[b, :, start:end].clone())
                for layer in cache.layers
            ]
            self._store(item.node_id, _CachedNode(len(item.token_ids), layers))
        last = torch.tensor([len(t) - 1 for t in new])
        return probs.gather(1, last.unsqueeze(1).to(probs.device)).squeeze(1).tolist()


def _forward_cached(value_model, input_ids, mask, stacked: list[_LayerKV] | None):
    """P(success) of the new tokens ``(B, T_new)`` on top of ``stacked`` keys and values, and the
    extended cache: the backbone gets it under the argument name its transformers version takes."""
    import torch.nn.functional as F
    from transformers import DynamicCache

    cache = DynamicCache(ddp_cache_data=stacked) if stacked is not None else DynamicCache()
    new_len = input_ids.shape[1]
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)[:, -new_len:]  # (B, T_new)
    out = value_model.model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=position_ids,
        use_cache=True,
        **{cache_keyword(value_model.model): cache},
    )
    logits = value_model.score(out.last_hidden_state).float()  # (B, T_new, C)
    success = int(value_model.head["success_class"])
    return F.softmax(logits, dim=-1)[..., success], cache


def _stack_caches(
    parents: list[_CachedNode | None], width: int, device: torch.device
) -> list[_LayerKV]:
    """Per layer, the parents' keys and values left-padded with zeros to ``width``: (B, H, T, D)."""
    template = next(p for p in parents if p is not None).layers
    stacked = []
    for layer_index, (keys0, _values0) in enumerate(template):
        heads, _, head_dim = keys0.shape
        keys = keys0.new_zeros((len(parents), heads, width, head_dim))
        values = keys0.new_zeros((len(parents), heads, width, head_dim))
        for b, parent in enumerate(parents):
            if parent is not None and parent.length:
                k, v = parent.layers[layer_index]
                keys[b, :, width - parent.length :] = k
                values[b, :, width - parent.length :] = v
        stacked.append((keys.to(device), values.to(device)))
    return stacked
