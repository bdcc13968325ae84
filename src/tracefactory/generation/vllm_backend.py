"""The vLLM backend (GPU; the ``vllm`` extra): ``vllm.LLM`` over token-id prompts.

Thin on purpose: the mapping from our requests to vLLM's (``sampling_kwargs``,
``finish_reason_of``) is pure and unit-tested without vLLM; the rest is vLLM's documented offline
API (``LLM``, ``SamplingParams``, ``TokensPrompt``, ``RequestOutput.outputs[i]``).

Every sample is submitted as its own prompt with ``n=1`` and the sample's seed. vLLM would fan a
``n>1`` request out into ``n`` sequences anyway, and its per-sample seeds are an engine detail;
one prompt per seed keeps a sample's tokens a function of its own seed, as in the transformers
backend. Prefix caching (on) shares the prompt's KV blocks between the samples, so nothing is
computed twice, and every sample of every request is kept.
"""

from __future__ import annotations

import logging
from typing import Any

from tracefactory.generation.engine import (
    FinishReason,
    GenerationBackend,
    GenerationRequest,
    GenerationResult,
    Sample,
    SamplingSpec,
)

logger = logging.getLogger(__name__)

_INSTALL_HINT = "the vllm backend needs vLLM: pip install 'tracefactory[vllm]' (GPU machines only)"


def sampling_kwargs(spec: SamplingSpec, seed: int, logprobs: bool = False) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one sample of a request."""
    return {
        "n": 1,
        "seed": seed,
        "max_tokens": spec.max_new_tokens,
        "temperature": spec.temperature,
        "top_p": spec.top_p,
        "stop_token_ids": list(spec.stop_token_ids),
        "logprobs": 0 if logprobs else None,  # 0: only the sampled token's logprob
    }


def finish_reason_of(reason: str | None) -> FinishReason:
    """Map ``CompletionOutput.finish_reason`` (``"stop"``: EOS or a stop id; ``"length"``:
    max_tokens) to ours.

    Raises:
        RuntimeError: for anything else (an aborted request): such a sample must not be stored.
    """
    if reason == "stop":
        return FinishReason.STOP
    if reason == "length":
        return FinishReason.LENGTH
    raise RuntimeError(f"vLLM finished a sample with reason {reason!r} (neither stop nor length)")


def sampled_logprobs(token_ids: list[int], logprobs: list[dict] | None) -> list[float] | None:
    """The sampled tokens' logprobs from vLLM's per-position ``{token_id: Logprob}`` maps."""
    if logprobs is None:
        return None
    return [float(step[token].logprob) for token, step in zip(token_ids, logprobs, strict=True)]


class VllmBackend(GenerationBackend):
    """One ``vllm.LLM`` engine (tensor parallel over ``tensor_parallel_size`` GPUs).

    Raises:
        ImportError: when vLLM is not installed, naming the extra to install.
    """

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        logprobs: bool = False,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError(_INSTALL_HINT) from e
        self.logprobs = logprobs
        self.llm = LLM(
            model=model,
            tensor_parallel_size=tensor_parallel_size,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enable_prefix_caching=True,
            # The Ray actor already holds this engine's GPUs; vLLM's own Ray executor would try to
            # reserve them again from inside it. Local worker processes use the actor's GPUs.
            distributed_executor_backend="mp" if tensor_parallel_size > 1 else None,
        )

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts, params = [], []
        for request in requests:
            for seed in request.seeds:
                prompts.append(TokensPrompt(prompt_token_ids=list(request.prompt_ids)))
                params.append(
                    SamplingParams(**sampling_kwargs(request.sampling, seed, self.logprobs))
                )
        outputs = iter(self.llm.generate(prompts, params, use_tqdm=False))
        results = []
        for request in requests:
            samples = []
            for _ in request.seeds:
                completion = next(outputs).outputs[0]
                token_ids = list(completion.token_ids)
                samples.append(
                    Sample(
                        token_ids,
                        finish_reason_of(completion.finish_reason),
                        sampled_logprobs(token_ids, completion.logprobs),
                    )
                )
            results.append(GenerationResult(request.request_id, samples))
        return results
