"""Evaluate value-guided search against the baselines: the ``evaluate`` stage's recipe.

Run:
    python train/evaluate_search.py --params params.yaml [--set evaluate.search_seeds=4 ...]
    tracefactory evaluate --params params.yaml --set evaluate.search_seeds=4   # the same

The loop, top to bottom: build the engines (policy sampler, value scorer, grader); for every
benchmark, batch of problems, method and budget, run the method and write its graded samples as
one shard of ``data/evaluate`` (a rerun skips finished shards, so a killed run resumes shard by
shard); then count every aggregate from that table and write ``reports/evaluate/{metrics.json,
run.json, report.md, *.png, plots/accuracy.json}``. The components (search algorithms, scorers,
votes, statistics) live in ``tracefactory.search``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass

import polars as pl

from tracefactory.config import params_hash
from tracefactory.io import ShardWriter, TableReader, dataset_fingerprint
from tracefactory.models import model_fingerprint
from tracefactory.params import load_params
from tracefactory.search.config import EvaluateConfig
from tracefactory.search.engines import build_engines
from tracefactory.search.evaluate import Engines, Problem, load_benchmark, method_plan, run_method
from tracefactory.search.report import write_reports
from tracefactory.search.samples import sample_rows, shard_name, summarise
from tracefactory.search.voting import AnswerGrouper
from tracefactory.stats import Progress, write_metrics

logger = logging.getLogger("evaluate_search")

SAMPLES_TABLE = "evaluate_samples"  # schemas/evaluate_samples.yaml
# Settings that change how, not what, is computed: a rerun with other values resumes the table.
# Not in the samples' hash: locations (the models enter by their fingerprints, the benchmark files
# by their content), and settings that change no sample. value_batch_tokens and value_cache_tokens
# stay in: they change values in their last bits and the token and FLOPs counts.
NOT_HASHED = {"output_dir": True, "samples_dir": True, "bootstrap_resamples": True,
              "num_threads": True, "problems_dir": True, "value_model": True,
              "policy": {"model"}}  # fmt: skip


@dataclass(frozen=True)
class Work:
    """One shard: a method at a budget on one batch of a benchmark's problems."""

    name: str
    benchmark: str
    problems: list[Problem]
    method: str
    budget: int


def plan(config: EvaluateConfig) -> list[Work]:
    """Every shard of the sample table, in run order (deterministic)."""
    work = []
    for spec in config.benchmarks:
        problems = load_benchmark(spec, config)
        logger.info("benchmark %s: %d problems", spec.name, len(problems))
        size = config.problems_per_batch
        for batch, start in enumerate(range(0, len(problems), size)):
            for method, budget in method_plan(config):
                name = shard_name(spec.name, batch, method, budget)
                work.append(Work(name, spec.name, problems[start : start + size], method, budget))
    return work


def table_metadata(config: EvaluateConfig, run_seed: int, engines: Engines) -> dict[str, str]:
    """Metadata of the sample table: shards written under other params are not resumed."""
    hashed = config.model_dump(mode="json", exclude=NOT_HASHED)
    for benchmark in hashed["benchmarks"]:  # a local file by its content, a Hub id by its name
        if benchmark["path"] is not None:
            benchmark["path"] = dataset_fingerprint(benchmark["path"])
    inputs = [model_fingerprint(config.policy.model), model_fingerprint(config.value_model)]
    if any(spec.path is None for spec in config.benchmarks):  # the problems table's test split
        inputs.append(TableReader(config.problems_dir).fingerprint)
    return {
        "producer": "evaluate",
        "params_hash": params_hash(hashed, run_seed, *inputs),
        "tokenizer": engines.tokenizer,
        "tokenizer_hash": engines.tokenizer_hash,
    }


def generate(config: EvaluateConfig, run_seed: int, engines: Engines) -> dict:
    """Run every unfinished shard and write it; return what this run did (for run.json)."""
    work = plan(config)
    writer = ShardWriter(
        config.samples_dir, SAMPLES_TABLE, table_metadata(config, run_seed, engines)
    )
    done = writer.completed()
    todo = [w for w in work if w.name not in done]
    logger.info("%d of %d shards to run (%d finished earlier)", len(todo), len(work), len(done))
    progress = Progress("evaluate", len(todo), unit="shards")
    seconds: dict[str, float] = {}
    for item in todo:
        started = time.monotonic()
        run = run_method(item.problems, item.method, item.budget, config, engines, run_seed)
        rows = sample_rows(item.benchmark, item.problems, run)
        writer.write(item.name, rows)
        progress.advance(1, samples=len(rows), tokens=run.tally.gen_tokens)
        key = f"{item.benchmark}/{item.method}@{item.budget}"
        seconds[key] = seconds.get(key, 0.0) + time.monotonic() - started
    progress.close()
    manifest = writer.finalize({w.name for w in work})
    return {
        "shards_run": len(todo),
        "shards_resumed": len(work) - len(todo),
        "rows": manifest["rows"],
        "wall_seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def count_metrics(config: EvaluateConfig, grader) -> dict:
    """Every benchmark's metrics, counted from the finished sample table."""
    table = TableReader(config.samples_dir).scan().drop("token_ids")
    grouper = AnswerGrouper(grader)
    return {
        spec.name: summarise(
            table.filter(pl.col("benchmark") == spec.name).collect(), config, grouper
        )
        for spec in config.benchmarks
    }


def evaluate(config: EvaluateConfig, run_seed: int) -> dict:
    """Generate (or resume) the sample table, count the metrics, write the reports."""
    started = time.monotonic()
    with build_engines(config) as engines:
        run = generate(config, run_seed, engines)
        metrics = count_metrics(config, engines.grader)
        scorer = engines.scorer
        run["value_scorer"] = {
            "kind": config.scorer,
            "tokens_processed": scorer.tokens_processed,
            "peak_cached_tokens": getattr(scorer, "peak_cached_tokens", 0),
            "uncached_nodes": getattr(scorer, "uncached_nodes", 0),
        }
    run["total_seconds"] = round(time.monotonic() - started, 1)
    write_metrics(f"{config.output_dir}/metrics.json", metrics)
    write_metrics(f"{config.output_dir}/run.json", run)
    write_reports(metrics, config.output_dir, config)
    return metrics


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a param, e.g. --set evaluate.search_seeds=4 (repeatable)",
    )
    parser.add_argument("overrides", nargs="*", help="more key=value overrides (same as --set)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("TRACEFACTORY_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    params = load_params(args.params, [*args.sets, *args.overrides])
    return evaluate(params.evaluate, params.seed)


if __name__ == "__main__":
    main()
