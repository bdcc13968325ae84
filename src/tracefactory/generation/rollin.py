"""The rollin stage: k sampled responses per train problem from a weighted pool of policies.

Which policy answers sample ``i`` of a problem is drawn from the run seed, the problem id and ``i``
alone (``assign_policies``), so it never depends on sharding or actor count.

Sharding, and why one worker pool per policy: each Ray actor owns one engine, and policies differ in
size (the paper: R1-Distill 1.5B to 32B; a 32B engine needs more GPUs than a 1.5B one). So each
policy is a worker pool of the stage (``Stage.pools``), run one after the other, each with its own
``workers`` (GPUs per actor = tensor-parallel size). Shard ``<policy>-<k>`` holds that policy's
samples of the k-th group of ``problems_per_shard`` problems (problems sorted by id); all shards
land in one table. A rerun skips every finished shard of every policy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from tracefactory.budget import Budget
from tracefactory.config import RayConfig, WorkerConfig
from tracefactory.errors import ConfigError
from tracefactory.generation.config import PolicyConfig, RollinConfig
from tracefactory.generation.engine import GenerationRequest, failure_counts
from tracefactory.generation.metrics import GenerationCount, generation_report, generation_summary
from tracefactory.generation.provenance import generation_metadata
from tracefactory.generation.templates import encode_prompt
from tracefactory.integrity import GENERATION_KEY
from tracefactory.io import TableReader
from tracefactory.models import load_tokenizer, model_fingerprint, require_model, tokenizer_hash
from tracefactory.seeds import derive_seed, row_id, unit_interval
from tracefactory.stage import Shard, ShardResult, Stage, StageRun, run_stage

if TYPE_CHECKING:
    from tracefactory.params import Params

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProblemSamples:
    """One problem's samples that one policy generates: the payload unit of a rollin shard."""

    problem_id: str
    problem: str
    sample_indices: tuple[int, ...]
    seeds: tuple[int, ...]


def assign_policies(
    run_seed: int, problem_id: str, samples: int, policies: list[PolicyConfig]
) -> list[str]:
    """The policy of each sample index of a problem, drawn with the pool's weights."""
    total = sum(p.weight for p in policies)
    names = []
    for sample_index in range(samples):
        point = unit_interval(run_seed, "policy", problem_id, sample_index) * total
        cumulative = 0.0
        chosen = policies[-1].name  # float round-off at the top end
        for policy in policies:
            cumulative += policy.weight
            if point < cumulative:
                chosen = policy.name
                break
        names.append(chosen)
    return names


class RollinStage(Stage):
    """Roll-ins of every policy of the pool, one worker pool per policy, into one table.

    Args:
        config: the ``rollin`` section of params.yaml.
        run_seed: the run seed (policy assignment and every sample's seed derive from it).
    """

    name = "rollin"
    output_schema = "rollins"
    version = 1
    counters = GenerationCount
    rate_counts = (GenerationCount.SAMPLES, GenerationCount.TOKENS)
    summary = staticmethod(generation_summary)

    def __init__(self, config: RollinConfig, run_seed: int) -> None:
        self.config, self.run_seed = config, run_seed
        names = [p.name for p in config.policies]
        if len(set(names)) != len(names):
            raise ConfigError(f"rollin.policies: policy names must be unique, got {names}")

    @classmethod
    def from_params(cls, params: Params) -> RollinStage:
        return cls(params.rollin, params.seed)

    def pools(self) -> dict[str, WorkerConfig]:
        return {p.name: p.workers or self.config.workers for p in self.config.policies}

    def identity(self) -> list:
        """The run seed, the problems table (new problems make old roll-ins stale), every
        policy's weights, and the section without what changes how, not what, is generated."""
        hashed = self.config.model_dump(
            mode="json",
            exclude={
                "workers": True,
                "use_ray": True,
                # a policy enters by its fingerprint below, not by where it lives
                "policies": {"__all__": {"workers", "batch_size", "model"}},
            },
        )
        for i, policy in enumerate(self.config.policies):
            require_model(policy.model, f"rollin.policies[{i}].model")
        return [
            self.run_seed,
            TableReader(self.config.problems_dir).fingerprint,
            *(model_fingerprint(p.model) for p in self.config.policies),
            hashed,
        ]

    def table_metadata(self) -> dict[str, str]:
        """The tokenizer every policy of the pool shares.

        Raises:
            ConfigError: for policies with different tokenizers.
        """
        policies = self.config.policies
        hashes = {p.model: tokenizer_hash(load_tokenizer(p.model)) for p in policies}
        if len(set(hashes.values())) > 1:
            raise ConfigError(
                "rollin.policies: all policies must share one tokenizer (token ids are stored as "
                f"generated and cut into roll-out contexts); hashes by model: {hashes}"
            )
        return {
            "tokenizer": policies[0].model,
            "tokenizer_hash": next(iter(hashes.values())),
            GENERATION_KEY: generation_metadata(policies),
        }

    def plan(self) -> list[Shard]:
        problems = read_problems(self.config)
        size = self.config.problems_per_shard
        shards = []
        for policy in self.config.policies:
            for group, start in enumerate(range(0, len(problems), size)):
                payload = []
                for problem_id, problem in problems[start : start + size]:
                    picks = assign_policies(
                        self.run_seed,
                        problem_id,
                        self.config.samples_per_problem,
                        self.config.policies,
                    )
                    indices = tuple(i for i, name in enumerate(picks) if name == policy.name)
                    if indices:
                        seeds = tuple(
                            derive_seed(self.run_seed, "rollin", problem_id, i) for i in indices
                        )
                        payload.append(ProblemSamples(problem_id, problem, indices, seeds))
                if payload:
                    shards.append(Shard(f"{policy.name}-{group:05d}", payload, pool=policy.name))
        return shards

    def setup(self, pool: str) -> None:
        from tracefactory.generation.engine import load_backend

        self.policy = next(p for p in self.config.policies if p.name == pool)
        workers = self.pools()[pool]
        self.tokenizer = load_tokenizer(self.policy.model)
        self.backend = load_backend(self.policy, num_threads=max(1, int(workers.num_cpus)))
        self.sampling = self.config.sampling.spec(self.tokenizer)

    def process(self, shard: Shard, inputs: None) -> ShardResult:
        requests = [
            GenerationRequest(
                request_id=item.problem_id,
                prompt_ids=tuple(encode_prompt(self.tokenizer, self.policy.template, item.problem)),
                seeds=item.seeds,
                sampling=self.sampling,
            )
            for item in shard.payload
        ]
        results = self.backend.generate(requests)
        rows = []
        for item, request, result in zip(shard.payload, requests, results, strict=True):
            for index, seed, sample in zip(
                item.sample_indices, item.seeds, result.samples, strict=True
            ):
                rows.append(
                    {
                        "rollin_id": row_id(item.problem_id, self.policy.name, index, seed),
                        "problem_id": item.problem_id,
                        "policy": self.policy.name,
                        "sample_index": index,
                        "seed": seed,
                        "prompt_ids": list(request.prompt_ids),
                        "token_ids": sample.token_ids,
                        "finish_reason": str(sample.finish_reason),
                    }
                )
        counts = {
            GenerationCount.SAMPLES: len(rows),
            GenerationCount.TOKENS: sum(len(row["token_ids"]) for row in rows),
        }
        return ShardResult(rows, {**counts, **failure_counts(rows)})

    def report(self, run: StageRun) -> dict:
        return generation_report(run, self.config.output_dir)


def read_problems(config: RollinConfig) -> list[tuple[str, str]]:
    """(problem_id, problem) of the configured splits, sorted by id, first ``max_problems``."""
    frame = (
        TableReader(config.problems_dir)
        .scan()
        .filter(pl.col("split").is_in(config.splits))
        .select("problem_id", "problem")
        .sort("problem_id")
    )
    if config.max_problems is not None:
        frame = frame.head(config.max_problems)
    return list(frame.collect().iter_rows())


def run_rollin(
    config: RollinConfig,
    run_seed: int,
    ray_config: RayConfig | None = None,
    budget: Budget | None = None,
) -> StageRun:
    """Run the rollin stage (on Ray when ``ray_config`` is given, else in this process)."""
    return run_stage(RollinStage(config, run_seed), config.output_dir, ray_config, budget=budget)
