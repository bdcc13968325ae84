"""The rollout stage: the fixed roll-out policy continues every branch point of every roll-in.

A roll-out's context is ``rollins.prompt_ids + rollins.token_ids[:cut_position]`` (paper, sec. 3);
it may generate ``max_response_tokens - cut_position`` tokens, so roll-in prefix plus roll-out
respects the configured cap. Token ids cross from the roll-in policies to the roll-out policy
untouched, so the roll-out policy must share the roll-ins' tokenizer (checked by hash).

Shards follow the rollins table's shards: rollin shard ``<name>`` (roll-ins sorted by problem id,
sample index) becomes rollout shards ``<name>-000``, ``<name>-001``... of ``rollins_per_shard``
roll-ins each. Branch points are drawn on the driver (cheap, seeded per roll-in); a shard's payload
names its rollin shard, its roll-ins and their cut positions, and the driver reads just those
roll-ins' token ids for it (``read``), never the whole table (22 GB of token ids at paper scale).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from tracefactory.budget import Budget
from tracefactory.config import RayConfig, WorkerConfig
from tracefactory.errors import StageInputError
from tracefactory.generation.branch_points import draw_cut_positions
from tracefactory.generation.config import RolloutConfig
from tracefactory.generation.engine import GenerationRequest, failure_counts
from tracefactory.generation.metrics import GenerationCount, generation_report, generation_summary
from tracefactory.generation.provenance import generation_metadata
from tracefactory.integrity import GENERATION_KEY
from tracefactory.io import TableReader
from tracefactory.models import (
    load_tokenizer,
    model_fingerprint,
    require_model,
    require_same_tokenizer,
    tokenizer_hash,
)
from tracefactory.seeds import derive_seed, row_id
from tracefactory.stage import Shard, ShardResult, Stage, StageRun, run_stage

if TYPE_CHECKING:
    from tracefactory.params import Params

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RollinCuts:
    """One roll-in of a rollout shard and where it is cut."""

    rollin_id: str
    problem_id: str
    cut_positions: tuple[int, ...]  # sorted; position i is cut_index i


@dataclass(frozen=True)
class RolloutWork:
    """The payload of a rollout shard: the rollin shard to read and the roll-ins to continue."""

    rollin_shard: str
    rollins: tuple[RollinCuts, ...]


def plan_cuts(run_seed: int, config: RolloutConfig, rollin_shard: pl.LazyFrame) -> list[RollinCuts]:
    """Every roll-in of one rollin shard (sorted by problem id, sample index) with its cuts."""
    frame = (
        rollin_shard.select(
            "rollin_id",
            "problem_id",
            "sample_index",
            pl.col("token_ids").list.len().alias("num_tokens"),
        )
        .sort("problem_id", "sample_index")
        .collect()
    )
    return [
        RollinCuts(
            rollin_id,
            problem_id,
            tuple(
                draw_cut_positions(
                    num_tokens,
                    config.cuts_per_rollin,
                    config.cut_distribution,
                    derive_seed(run_seed, "branch", rollin_id),
                )
            ),
        )
        for rollin_id, problem_id, _, num_tokens in frame.iter_rows()
    ]


class RolloutStage(Stage):
    """Roll-outs of the fixed roll-out policy from the branch points of every roll-in.

    Args:
        config: the ``rollout`` section of params.yaml.
        run_seed: the run seed (branch points and every sample's seed derive from it).
    """

    name = "rollout"
    output_schema = "rollouts"
    version = 1
    counters = GenerationCount
    rate_counts = (GenerationCount.SAMPLES, GenerationCount.TOKENS)
    summary = staticmethod(generation_summary)

    def __init__(self, config: RolloutConfig, run_seed: int) -> None:
        self.config, self.run_seed = config, run_seed
        self.rollins = TableReader(config.rollins_dir)

    @classmethod
    def from_params(cls, params: Params) -> RolloutStage:
        return cls(params.rollout, params.seed)

    def pools(self) -> dict[str, WorkerConfig]:
        return {"": self.config.workers}

    def identity(self) -> list:
        """The run seed, the rollins table (new roll-ins make old roll-outs stale), the roll-out
        policy's weights, and the section without what changes how, not what, is generated."""
        hashed = self.config.model_dump(
            mode="json",
            # the policy enters by its fingerprint below, not by where it lives
            exclude={
                "workers": True,
                "use_ray": True,
                "policy": {"workers", "batch_size", "model"},
            },
        )
        require_model(self.config.policy.model, "rollout.policy.model")
        return [
            self.run_seed,
            self.rollins.fingerprint,
            model_fingerprint(self.config.policy.model),
            hashed,
        ]

    def table_metadata(self) -> dict[str, str]:
        """The roll-out policy's tokenizer, checked to be the roll-ins'.

        Raises:
            ConfigError: if the tokenizers differ.
        """
        model = self.config.policy.model
        ours = tokenizer_hash(load_tokenizer(model))
        require_same_tokenizer(
            f"the rollins table {self.config.rollins_dir}",
            self.rollins.metadata["tokenizer_hash"],
            model,
            ours,
        )
        return {
            "tokenizer": model,
            "tokenizer_hash": ours,
            GENERATION_KEY: generation_metadata([self.config.policy]),
        }

    def plan(self) -> list[Shard]:
        size = self.config.rollins_per_shard
        shards = []
        for name in self.rollins.shard_names:
            cuts = plan_cuts(self.run_seed, self.config, self.rollins.scan_shard(name))
            for k, start in enumerate(range(0, len(cuts), size)):
                work = RolloutWork(name, tuple(cuts[start : start + size]))
                shards.append(Shard(f"{name}-{k:03d}", work))
        return shards

    def read(self, shard: Shard) -> dict[str, tuple[list, list]]:
        """prompt_ids and token_ids of the shard's roll-ins, from their rollin shard."""
        work: RolloutWork = shard.payload
        ids = [item.rollin_id for item in work.rollins]
        frame = (
            self.rollins.scan_shard(work.rollin_shard)
            .filter(pl.col("rollin_id").is_in(ids))
            .select("rollin_id", "prompt_ids", "token_ids")
            .collect()
        )
        if frame.height != len(ids):
            raise StageInputError(
                f"{self.config.rollins_dir}: rollin shard {work.rollin_shard!r} lacks "
                f"{len(ids) - frame.height} planned roll-ins; rerun rollin"
            )
        return {rid: (prompt, tokens) for rid, prompt, tokens in frame.iter_rows()}

    def setup(self, pool: str) -> None:
        from tracefactory.generation.engine import load_backend

        self.tokenizer = load_tokenizer(self.config.policy.model)
        threads = max(1, int(self.config.workers.num_cpus))
        self.backend = load_backend(self.config.policy, num_threads=threads)

    def process(self, shard: Shard, inputs: dict[str, tuple[list, list]]) -> ShardResult:
        work: RolloutWork = shard.payload
        items = work.rollins
        requests, keys = [], []
        for item in items:
            prompt_ids, token_ids = inputs[item.rollin_id]
            for cut_index, position in enumerate(item.cut_positions):
                requests.append(self._request(item, cut_index, position, prompt_ids, token_ids))
                keys.append((item, cut_index, position))
        rows = []
        for (item, cut_index, position), request, result in zip(
            keys, requests, self.backend.generate(requests), strict=True
        ):
            for sample_index, (seed, sample) in enumerate(
                zip(request.seeds, result.samples, strict=True)
            ):
                rows.append(
                    {
                        "rollout_id": row_id(item.rollin_id, cut_index, sample_index, seed),
                        "rollin_id": item.rollin_id,
                        "problem_id": item.problem_id,
                        "policy": self.config.policy.name,
                        "cut_index": cut_index,
                        "cut_position": position,
                        "sample_index": sample_index,
                        "seed": seed,
                        "token_ids": sample.token_ids,
                        "finish_reason": str(sample.finish_reason),
                    }
                )
        counts = {
            GenerationCount.SAMPLES: len(rows),
            GenerationCount.TOKENS: sum(len(row["token_ids"]) for row in rows),
            GenerationCount.DROPPED_ROLLIN_TOO_SHORT: sum(
                1 for item in items if not item.cut_positions
            ),
        }
        return ShardResult(rows, {**counts, **failure_counts(rows)})

    def report(self, run: StageRun) -> dict:
        return generation_report(run, self.config.output_dir)

    def _request(self, item: RollinCuts, cut_index: int, position: int, prompt_ids, token_ids):
        seeds = tuple(
            derive_seed(self.run_seed, "rollout", item.rollin_id, cut_index, j)
            for j in range(self.config.samples_per_cut)
        )
        room = max(1, self.config.sampling.max_response_tokens - position)
        sampling = self.config.sampling.spec(self.tokenizer, max_new_tokens=room)
        context = tuple(prompt_ids) + tuple(token_ids[:position])
        return GenerationRequest(f"{item.rollin_id}/{cut_index}", context, seeds, sampling)


def run_rollout(
    config: RolloutConfig,
    run_seed: int,
    ray_config: RayConfig | None = None,
    budget: Budget | None = None,
) -> StageRun:
    """Run the rollout stage (on Ray when ``ray_config`` is given, else in this process)."""
    return run_stage(RolloutStage(config, run_seed), config.output_dir, ray_config, budget=budget)
