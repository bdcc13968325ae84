"""Evaluate value-guided search against the baselines: the ``evaluate`` stage's recipe.

Run:
    tracefactory evaluate --params params.yaml [--set evaluate.search_seeds=4 ...]
    python train/evaluate_search.py --params params.yaml [--set ...]   # the same, from a checkout

Top to bottom: run the ``evaluate`` stage (``search.stage.EvaluateStage``: every method at every
budget on every batch of problems, on ``evaluate.workers`` Ray actors that each build their own
engines (policy sampler, value scorer, grader); each graded sample kept in ``data/evaluate``; a
rerun skips finished shards, so a killed run resumes shard by shard); then count every aggregate
from that table and write
``reports/evaluate/{metrics.json, summary.json, run.json, report.md, *.png, plots/accuracy.json}``.
The components (search algorithms, scorers, votes, statistics) live in ``tracefactory.search``.
"""

from __future__ import annotations

import time

from tracefactory.config import RayConfig
from tracefactory.recipes import recipe_args, run_script
from tracefactory.search.config import EvaluateConfig
from tracefactory.search.report import write_reports as write_report_files
from tracefactory.search.samples import count_metrics
from tracefactory.search.stage import EvaluateStage
from tracefactory.stage import run_stage
from tracefactory.stats import write_metrics
from tracefactory.summaries import write_reports


def evaluate(
    config: EvaluateConfig, run_seed: int, ray_config: RayConfig | None, fresh: bool = False
) -> dict:
    """Generate (or resume) the sample table, count the metrics, write the reports.

    ``ray_config`` None runs every shard in this process; ``fresh`` regenerates every shard of the
    sample table, finished or not."""
    started = time.monotonic()
    stage = EvaluateStage(config, run_seed)
    try:
        samples = run_stage(stage, ray_config=ray_config, fresh=fresh)
    finally:
        stage.close()  # the engines of a run in this process
    metrics = count_metrics(config)
    run = {  # what this run did, beside the metrics (which never depend on it)
        "shards_run": samples.shards_planned - samples.shards_skipped,
        "shards_resumed": samples.shards_skipped,
        "rows": samples.rows,
        "scorer": config.scorer,
        "table_counts": samples.stats,  # every shard's, this run's and earlier ones
        "total_seconds": round(time.monotonic() - started, 1),
    }
    write_reports(config.output_dir, metrics, EvaluateStage.summary(metrics))
    write_metrics(f"{config.output_dir}/run.json", run)
    write_report_files(metrics, config.output_dir, config)
    return metrics


def main(argv: list[str] | None = None) -> dict:
    args = recipe_args(argv, __doc__.splitlines()[0], "evaluate.search_seeds=4", has_table=True)
    params = args.params
    ray_config = params.ray if params.evaluate.use_ray else None
    return evaluate(params.evaluate, params.seed, ray_config, fresh=args.fresh)


if __name__ == "__main__":
    run_script(main)
