"""The engine-backed ``BlockSampler``: a block is a generation request on the beam's prefix.

A block request's prompt is the problem prompt plus the beam's response so far, ``max_new_tokens``
is the block size (clipped to the response cap), and the stop ids are those that end a trace (EOS
and configured stop ids), plus the delimiter token(s) for line blocks (blocks of a fixed token
count, or ending at a delimiter). Any ``GenerationBackend`` works (transformers on CPU, vLLM on
GPUs).

A search's next requests continue the blocks just sampled, so a backend that can keep each
sample's KV cache until its next call (the transformers backend's ``keep_continuations``) is asked
to: a beam then feeds only its newest token instead of re-encoding its whole prefix. vLLM's prefix
caching does the same on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from tracefactory.generation.config import SamplingConfig
from tracefactory.generation.engine import GenerationBackend, GenerationRequest
from tracefactory.search.interfaces import Block, BlockRequest

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

KEPT_CACHE_BYTES = 2 << 30  # the policy's KV cache kept from one block to the next, at most


class EngineBlockSampler:
    """Samples blocks with a generation backend.

    Args:
        backend: the policy's engine.
        tokenizer: the policy's tokenizer (its EOS ends a trace).
        sampling: temperature, top-p and extra stop ids (the paper: 0.6, 0.95).
        delimiter_ids: token ids that end a block without ending the trace (empty: fixed blocks).
    """

    def __init__(
        self,
        backend: GenerationBackend,
        tokenizer: PreTrainedTokenizerBase,
        sampling: SamplingConfig,
        delimiter_ids: Iterable[int] = (),
    ) -> None:
        self.backend, self.tokenizer, self.sampling = backend, tokenizer, sampling
        self.eos_ids = sampling.spec(tokenizer).stop_token_ids
        self.delimiter_ids = tuple(delimiter_ids)
        keep = getattr(backend, "keep_continuations", None)
        if keep is not None:
            keep(KEPT_CACHE_BYTES)

    def __call__(self, requests: list[BlockRequest], delimited: bool = True) -> list[list[Block]]:
        """Sample every request's blocks; ``delimited=False`` ignores delimiters (whole traces)."""
        delimiters = self.delimiter_ids if delimited else ()
        generation = [
            GenerationRequest(
                request_id=str(i),
                prompt_ids=request.prompt_ids + request.response_ids,
                seeds=request.seeds,
                sampling=self.sampling.spec(self.tokenizer, request.max_new_tokens, delimiters),
            )
            for i, request in enumerate(requests)
        ]
        results = self.backend.generate(generation) if generation else []
        return [
            [
                Block(tuple(s.token_ids), bool(s.token_ids) and s.token_ids[-1] in self.eos_ids)
                for s in result.samples
            ]
            for result in results
        ]
