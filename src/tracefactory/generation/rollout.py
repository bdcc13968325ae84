"""The rollout stage: the fixed roll-out policy continues every branch point of every roll-in.

A roll-out's context is ``rollins.prompt_ids + rollins.token_ids[:cut_position]`` (DESIGN step 4);
it may generate ``max_response_tokens - cut_position`` tokens, so roll-in prefix plus roll-out
respects the configured cap. Token ids cross from the roll-in policies to the roll-out policy
untouched, so the roll-out policy must share the roll-ins' tokenizer (checked by hash).

Shards follow the rollins table's shards: rollin shard ``<name>`` (roll-ins sorted by problem id,
sample index) becomes rollout shards ``<name>-000``, ``<name>-001``... of ``rollins_per_shard``
roll-ins each. Branch points are drawn on the driver (cheap, seeded per roll-in); a shard's payload
names its rollin shard, its roll-ins and their cut positions, so a worker reads one rollin shard
file, never the whole table (22 GB of token ids at paper scale).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tracefactory.config import Params, RayConfig, RolloutConfig, params_hash
from tracefactory.errors import StageInputError
from tracefactory.generation.branch_points import draw_cut_positions
from tracefactory.generation.engine import GenerationRequest, SamplingSpec, failure_counts
from tracefactory.generation.policies import (
    load_tokenizer,
    model_fingerprint,
    require_same_tokenizer,
    stop_token_ids,
    tokenizer_hash,
)
from tracefactory.generation.seeds import derive_seed, row_id
from tracefactory.io import TableReader
from tracefactory.stage import Shard, ShardResult, Stage, StageSummary, run_stage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RollinCuts:
    """One roll-in of a rollout shard and where it is cut."""

    rollin_id: str
    problem_id: str
    cut_positions: tuple[int, ...]  # sorted; position i is cut_index i


def rollout_metadata(run_seed: int, config: RolloutConfig) -> dict[str, str]:
    """Table metadata; checks the roll-out policy shares the roll-ins' tokenizer.

    Raises:
        StageInputError: if the rollins table is not finished.
        ConfigError: if the tokenizers differ.
    """
    rollins_table = TableReader(config.rollins_dir)
    rollins = rollins_table.metadata
    model = config.policy.model
    ours = tokenizer_hash(load_tokenizer(model))
    require_same_tokenizer(
        f"the rollins table {config.rollins_dir}", rollins["tokenizer_hash"], model, ours
    )
    hashed = config.model_dump(
        mode="json",
        exclude={"workers": True, "use_ray": True, "policy": {"workers", "batch_size"}},
    )
    return {
        "producer": "rollout",
        # The rollins' fingerprint is part of ours: new roll-ins make old roll-outs stale.
        "params_hash": params_hash(
            run_seed,
            rollins_table.fingerprint,
            model_fingerprint(model),
            json.dumps(hashed, sort_keys=True),
        ),
        "tokenizer": model,
        "tokenizer_hash": ours,
    }


@dataclass(frozen=True)
class RolloutWork:
    """The payload of a rollout shard: the rollin shard to read and the roll-ins to continue."""

    rollin_shard: str
    rollins: tuple[RollinCuts, ...]


def plan_cuts(run_seed: int, config: RolloutConfig, rollin_shard: Path) -> list[RollinCuts]:
    """Every roll-in of one rollin shard (sorted by problem id, sample index) with its cuts."""
    frame = (
        pl.scan_parquet(rollin_shard)
        .select(
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
    """Roll-outs of the fixed roll-out policy from the branch points of every roll-in."""

    name = "rollout"
    output_schema = "rollouts"
    rate_counts = ("samples", "tokens")

    def __init__(
        self,
        run_seed: int,
        config: RolloutConfig,
        table_metadata: dict[str, str],
        num_threads: int = 1,
    ) -> None:
        self.run_seed, self.config = run_seed, config
        self.table_metadata = table_metadata
        self.num_threads = num_threads

    def metadata(self) -> dict[str, str]:
        return dict(self.table_metadata)

    def plan(self) -> list[Shard]:
        size = self.config.rollins_per_shard
        shards = []
        for path in TableReader(self.config.rollins_dir).paths:
            cuts = plan_cuts(self.run_seed, self.config, path)
            for k, start in enumerate(range(0, len(cuts), size)):
                work = RolloutWork(path.stem, tuple(cuts[start : start + size]))
                shards.append(Shard(f"{path.stem}-{k:03d}", work))
        return shards

    def setup(self) -> None:
        from tracefactory.generation.engine import load_backend

        tokenizer = load_tokenizer(self.config.policy.model)
        self.stop_ids = stop_token_ids(tokenizer, self.config.sampling.stop_token_ids)
        self.backend = load_backend(self.config.policy, num_threads=self.num_threads)

    def process(self, shard: Shard) -> ShardResult:
        work: RolloutWork = shard.payload
        items = work.rollins
        contexts = _read_rollins(
            self.config.rollins_dir, work.rollin_shard, [item.rollin_id for item in items]
        )
        requests, keys = [], []
        for item in items:
            prompt_ids, token_ids = contexts[item.rollin_id]
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
            "samples": len(rows),
            "tokens": sum(len(row["token_ids"]) for row in rows),
            "dropped_rollin_too_short": sum(1 for item in items if not item.cut_positions),
        }
        return ShardResult(rows, {**counts, **failure_counts(rows)})

    def _request(self, item: RollinCuts, cut_index: int, position: int, prompt_ids, token_ids):
        seeds = tuple(
            derive_seed(self.run_seed, "rollout", item.rollin_id, cut_index, j)
            for j in range(self.config.samples_per_cut)
        )
        sampling = SamplingSpec(
            max_new_tokens=max(1, self.config.sampling.max_response_tokens - position),
            temperature=self.config.sampling.temperature,
            top_p=self.config.sampling.top_p,
            stop_token_ids=self.stop_ids,
        )
        context = tuple(prompt_ids) + tuple(token_ids[:position])
        return GenerationRequest(f"{item.rollin_id}/{cut_index}", context, seeds, sampling)


def _read_rollins(
    rollins_dir: str, rollin_shard: str, rollin_ids: list[str]
) -> dict[str, tuple[list, list]]:
    """prompt_ids and token_ids of the given roll-ins, from their rollin shard's file."""
    paths = {path.stem: path for path in TableReader(rollins_dir).paths}
    if rollin_shard not in paths:
        raise StageInputError(f"{rollins_dir}: rollin shard {rollin_shard!r} is gone; rerun rollin")
    frame = (
        pl.scan_parquet(paths[rollin_shard])
        .filter(pl.col("rollin_id").is_in(rollin_ids))
        .select("rollin_id", "prompt_ids", "token_ids")
        .collect()
    )
    return {rid: (prompt, tokens) for rid, prompt, tokens in frame.iter_rows()}


def run_rollout(params: Params, ray_config: RayConfig | None = None) -> StageSummary:
    """Run the rollout stage (on Ray when ``ray_config`` is given, else in this process)."""
    config = params.rollout
    metadata = rollout_metadata(params.seed, config)
    workers = config.workers
    stage = RolloutStage(params.seed, config, metadata, max(1, int(workers.num_cpus)))
    return run_stage(stage, config.output_dir, workers, ray_config)
