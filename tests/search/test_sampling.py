"""The engine block sampler on the transformers backend: a beam keeps its cache between blocks."""

from __future__ import annotations

from tracefactory.generation.config import SamplingConfig
from tracefactory.generation.transformers_backend import TransformersBackend
from tracefactory.models import load_tokenizer
from tracefactory.search.beam import beam_search
from tracefactory.search.compute import ModelShape, model_shape
from tracefactory.search.config import SearchConfig, SearchSettings, Selection
from tracefactory.search.engines import delimiter_token_ids
from tracefactory.search.interfaces import ScoreItem
from tracefactory.search.sampling import EngineBlockSampler


class TokenScorer:
    """Value = a fixed function of the tokens, so both runs choose the same beams."""

    shape = ModelShape(non_embedding_params=100, num_layers=2, attention_width=8)
    tokens_processed, flops = 0, 0.0

    def score(self, items: list[ScoreItem]) -> list[float]:
        return [(sum(i.token_ids) * 7919 % 1000) / 1000 for i in items]

    def retain(self, node_ids: set[int]) -> None:
        pass


def _search(policy_dir, prefix_reuse: bool):
    backend = TransformersBackend(str(policy_dir), batch_size=8, prefix_reuse=prefix_reuse)
    fed = [0]
    backend.model.register_forward_pre_hook(
        lambda module, args, kwargs: fed.__setitem__(0, fed[0] + kwargs["input_ids"].numel()),
        with_kwargs=True,
    )
    tokenizer = load_tokenizer(str(policy_dir))
    sampler = EngineBlockSampler(
        backend,
        tokenizer,
        SamplingConfig(max_response_tokens=48),
        delimiter_token_ids(tokenizer, "\n"),
    )
    settings = SearchSettings(
        search=SearchConfig(beam_width=2, block_tokens=6, max_children_per_parent=1),
        budget=4,
        selection=Selection.VALUE,
        max_response_tokens=48,
    )
    prompts = [
        tuple(tokenizer.encode(f"{i}+{i}=? (mod 7)\n", add_special_tokens=False)) for i in range(3)
    ]
    traces, _ = beam_search(
        prompts, ["a", "b", "c"], settings, sampler, TokenScorer(), model_shape(backend.model), 5
    )
    return [[t.response_ids for search in per for t in search] for per in traces], fed[0]


def test_vgs_blocks_identical_with_kept_cache_and_prefixes_not_reencoded(policy_dir):
    """Identical token ids whether a beam keeps its cache between blocks or re-encodes its
    prefix (reuse changes float rounding only; see the backend's tests for the tie caveat)."""
    plain, plain_fed = _search(policy_dir, prefix_reuse=False)
    kept, kept_fed = _search(policy_dir, prefix_reuse=True)
    assert plain == kept
    assert max(len(t) for per in kept for t in per) > 12  # several blocks per beam
    assert kept_fed < plain_fed / 2  # prefixes fed once, not once per block
