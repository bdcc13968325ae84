"""The ``evaluate`` stage: every method at every budget on every batch of every benchmark, each
graded sample kept in ``data/evaluate`` (``schemas/evaluate_samples.yaml``).

One shard is one method at one budget on one batch of a benchmark's problems, so a killed run
resumes shard by shard. It runs in the recipe's process, on the engines the recipe built (the
policy's sampler, the value scorer, the grader), which are too heavy to build twice. The metrics,
figures and report are counted from the finished table afterwards (``samples.summarise``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tracefactory.io import TableReader, dataset_fingerprint
from tracefactory.models import model_fingerprint
from tracefactory.search.config import EvaluateConfig
from tracefactory.search.evaluate import Engines, Problem, load_benchmark, method_plan, run_method
from tracefactory.search.samples import sample_rows, shard_name
from tracefactory.stage import Shard, ShardResult, Stage
from tracefactory.summaries import evaluate_summary

logger = logging.getLogger(__name__)

# Settings that change how, not what, is computed: a rerun with other values resumes the table.
# Not in the samples' hash: locations (the models enter by their fingerprints, the benchmark files
# by their content), and settings that change no sample. value_batch_tokens and value_cache_tokens
# stay in: they change values in their last bits and the token and FLOPs counts.
NOT_HASHED = {"output_dir": True, "samples_dir": True, "bootstrap_resamples": True,
              "num_threads": True, "problems_dir": True, "value_model": True,
              "policy": {"model"}}  # fmt: skip


class EvaluateCount(StrEnum):
    """Counters of the evaluate stage's shards."""

    SAMPLES = "samples"  # graded responses
    TOKENS = "tokens"  # tokens the policy generated


@dataclass(frozen=True)
class Work:
    """One shard's payload: a method at a budget on one batch of a benchmark's problems."""

    benchmark: str
    problems: list[Problem]
    method: str
    budget: int


class EvaluateStage(Stage):
    """The graded samples of every method of the evaluation, into ``evaluate.samples_dir``.

    Args:
        config: the ``evaluate`` section of params.yaml.
        run_seed: the run seed (every search's seed derives from it).
        engines: the engines the methods run on (``search.engines.build_engines``).
    """

    name = "evaluate"
    output_schema = "evaluate_samples"
    version = 1
    counters = EvaluateCount
    rate_counts = (EvaluateCount.SAMPLES, EvaluateCount.TOKENS)
    summary = staticmethod(evaluate_summary)  # of the metrics counted from the finished table

    def __init__(self, config: EvaluateConfig, run_seed: int, engines: Engines) -> None:
        self.config, self.run_seed, self.engines = config, run_seed, engines

    @property
    def output_dir(self) -> Path:
        return Path(self.config.samples_dir)

    def plan(self) -> list[Shard]:
        """Every shard of the sample table, in run order (deterministic)."""
        shards = []
        for spec in self.config.benchmarks:
            problems = load_benchmark(spec, self.config)
            logger.info("benchmark %s: %d problems", spec.name, len(problems))
            size = self.config.problems_per_batch
            for batch, start in enumerate(range(0, len(problems), size)):
                for method, budget in method_plan(self.config):
                    work = Work(spec.name, problems[start : start + size], method, budget)
                    shards.append(Shard(shard_name(spec.name, batch, method, budget), work))
        return shards

    def identity(self) -> list:
        """The section without what changes how, not what, is computed; the run seed; the
        policy's and value model's weights; and the problems table when a benchmark is its test
        split."""
        config = self.config
        inputs = [model_fingerprint(config.policy.model), model_fingerprint(config.value_model)]
        if any(spec.path is None for spec in config.benchmarks):
            inputs.append(TableReader(config.problems_dir).fingerprint)
        hashed = config.model_dump(mode="json", exclude=NOT_HASHED)
        for benchmark in hashed["benchmarks"]:  # a local file by its content, a Hub id by its name
            if benchmark["path"] is not None:
                benchmark["path"] = dataset_fingerprint(benchmark["path"])
        return [hashed, self.run_seed, *inputs]

    def table_metadata(self) -> dict[str, str]:
        return {"tokenizer": self.engines.tokenizer, "tokenizer_hash": self.engines.tokenizer_hash}

    def process(self, shard: Shard, inputs: None) -> ShardResult:
        work: Work = shard.payload
        run = run_method(
            work.problems, work.method, work.budget, self.config, self.engines, self.run_seed
        )
        rows = sample_rows(work.benchmark, work.problems, run)
        counts = {EvaluateCount.SAMPLES: len(rows), EvaluateCount.TOKENS: run.tally.gen_tokens}
        return ShardResult(rows, counts)
