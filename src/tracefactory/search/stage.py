"""The ``evaluate`` stage: every method at every budget on every batch of every benchmark, each
graded sample kept in ``data/evaluate`` (``schemas/evaluate_samples.yaml``).

One shard is one method at one budget on one batch of a benchmark's problems, so a killed run
resumes shard by shard. Shards go to ``evaluate.workers`` Ray actors, each of which builds its own
engines once (the policy's sampler, the value scorer, the grader): one per core here, one per GPU on
a cluster. A shard's samples depend only on the shard (every sample has its own seed; the scorer's
and the sampler's caches end with the shard), so the table is the same whichever worker ran what.
The metrics, figures and report are counted from the finished table afterwards
(``samples.summarise``).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tracefactory.config import WorkerConfig
from tracefactory.io import TableReader, dataset_fingerprint
from tracefactory.models import model_fingerprint
from tracefactory.search.config import EvaluateConfig
from tracefactory.search.engines import build_engines, policy_vocabulary
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
              "workers": True, "use_ray": True, "policy": {"model"}}  # fmt: skip


class EvaluateCount(StrEnum):
    """Counters of the evaluate stage's shards."""

    SAMPLES = "samples"  # graded responses
    TOKENS = "tokens"  # tokens the policy generated
    VALUE_TOKENS = "value_tokens"  # tokens the value model encoded
    UNCACHED_VALUE_NODES = "uncached_value_nodes"  # beams over value_cache_tokens, not cached


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

    Raises:
        ConfigError: (at construction, before any worker starts) the value model cannot be found,
            or its tokenizer is not the policy's.
    """

    name = "evaluate"
    output_schema = "evaluate_samples"
    version = 2  # 2: value_flops_full, and the official count in value_tokens_full
    counters = EvaluateCount
    rate_counts = (EvaluateCount.SAMPLES, EvaluateCount.TOKENS)
    summary = staticmethod(evaluate_summary)  # of the metrics counted from the finished table

    def __init__(self, config: EvaluateConfig, run_seed: int) -> None:
        self.config, self.run_seed = config, run_seed
        self.tokenizer_hash = policy_vocabulary(config)
        self._engines: Engines | None = None  # built per worker, in setup (after pickling)
        self._closing = contextlib.ExitStack()

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
        return {"tokenizer": self.config.policy.model, "tokenizer_hash": self.tokenizer_hash}

    def pools(self) -> dict[str, WorkerConfig]:
        return {"": self.config.workers}

    def setup(self, pool: str) -> None:
        self._engines = self._closing.enter_context(build_engines(self.config))

    def close(self) -> None:
        """Close this process's engines (the grader's worker processes), if it built them."""
        self._closing.close()
        self._engines = None

    def process(self, shard: Shard, inputs: None) -> ShardResult:
        work: Work = shard.payload
        scorer = self._engines.scorer
        tokens, uncached = scorer.tokens_processed, getattr(scorer, "uncached_nodes", 0)
        run = run_method(
            work.problems, work.method, work.budget, self.config, self._engines, self.run_seed
        )
        rows = sample_rows(work.benchmark, work.problems, run)
        counts = {
            EvaluateCount.SAMPLES: len(rows),
            EvaluateCount.TOKENS: run.tally.gen_tokens,
            EvaluateCount.VALUE_TOKENS: scorer.tokens_processed - tokens,
            EvaluateCount.UNCACHED_VALUE_NODES: getattr(scorer, "uncached_nodes", 0) - uncached,
        }
        return ShardResult(rows, counts)
