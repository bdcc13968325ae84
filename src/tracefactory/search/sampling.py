"""The engine-backed ``BlockSampler``: a block is a generation request on the beam's prefix.

A block request's prompt is the problem prompt plus the beam's response so far, ``max_new_tokens``
is the block size (clipped to the response cap), and the stop ids are EOS, plus the delimiter
token(s) for line blocks (issue 8: "blocks of a fixed token count or ending at a delimiter").
Any ``GenerationBackend`` works (transformers on CPU, vLLM on GPUs).
"""

from __future__ import annotations

from collections.abc import Iterable

from tracefactory.generation.engine import GenerationBackend, GenerationRequest, SamplingSpec
from tracefactory.search.interfaces import Block, BlockRequest


class EngineBlockSampler:
    """Samples blocks with a generation backend.

    Args:
        backend: the policy's engine.
        eos_ids: token ids that end a trace.
        delimiter_ids: token ids that end a block without ending the trace (empty: fixed blocks).
        temperature: sampling temperature (the paper: 0.6).
        top_p: nucleus mass (the paper: 0.95).
    """

    def __init__(
        self,
        backend: GenerationBackend,
        eos_ids: Iterable[int],
        delimiter_ids: Iterable[int] = (),
        temperature: float = 1.0,
        top_p: float = 1.0,
    ) -> None:
        self.backend = backend
        self.eos_ids = tuple(eos_ids)
        self.delimiter_ids = tuple(delimiter_ids)
        self.temperature, self.top_p = temperature, top_p

    def __call__(self, requests: list[BlockRequest], delimited: bool = True) -> list[list[Block]]:
        """Sample every request's blocks; ``delimited=False`` ignores delimiters (whole traces)."""
        stops = self.eos_ids + (self.delimiter_ids if delimited else ())
        generation = [
            GenerationRequest(
                request_id=str(i),
                prompt_ids=request.prompt_ids + request.response_ids,
                seeds=request.seeds,
                sampling=SamplingSpec(
                    max_new_tokens=request.max_new_tokens,
                    temperature=self.temperature,
                    top_p=self.top_p,
                    stop_token_ids=stops,
                ),
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
