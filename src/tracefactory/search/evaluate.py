"""The evaluate stage: run every method on every benchmark, grade, vote, and summarise.

Methods: independent sampling with pass@1, ``mv@N``, ``bon@N``, ``wmv@N`` (all budgets
from one pool of ``max(budgets)`` samples, each budget's accuracy averaged over the pool's disjoint
subsets); ``vgs@N`` (beam search guided by value, final WMV; DVTS when ``dvts_searches`` > 1) and
``random@N`` (the same search with random selection). Problems are processed in lockstep batches so
the engine and the value model see large batches. Recipe entry point: ``train/evaluate_search.py``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from tracefactory.config import BenchmarkConfig
from tracefactory.errors import StageInputError
from tracefactory.generation.seeds import derive_seed
from tracefactory.io import TableReader, read_benchmark
from tracefactory.schemas import TrajectoryClass
from tracefactory.search import stats
from tracefactory.search.beam import beam_search
from tracefactory.search.compute import ComputeTally, ModelShape
from tracefactory.search.config import EvaluateConfig, Selection
from tracefactory.search.independent import sample_independent
from tracefactory.search.interfaces import Trace
from tracefactory.search.voting import (
    AnswerGrouper,
    best_of_n,
    majority_vote,
    pass_at_1,
    weighted_majority_vote,
)
from tracefactory.stats import Progress

logger = logging.getLogger(__name__)

PAIRS = (("vgs", "mv"), ("wmv", "mv"), ("vgs", "random"))  # reported paired differences


@dataclass(frozen=True)
class Problem:
    key: str
    problem: str
    answer: str


@dataclass
class _Runs:
    """Traces of every run on one benchmark, per problem, keyed by (method, budget, seed)."""

    traces: dict[tuple[str, int, int], list[list[Trace]]] = field(default_factory=dict)
    compute: dict[tuple[str, int], ComputeTally] = field(default_factory=dict)

    def add(self, key: tuple[str, int, int], traces: list[list[Trace]], tally) -> None:
        self.traces.setdefault(key, []).extend(traces)
        self.compute.setdefault(key[:2], ComputeTally()).add(tally)


def load_benchmark(spec: BenchmarkConfig, config: EvaluateConfig) -> list[Problem]:
    """The problems of one benchmark (the problems table's test split when ``path`` is None).

    Raises:
        StageInputError: the problems table is missing or has no test problems.
        ConfigError: a benchmark file or Hub dataset cannot be read.
    """
    limit = spec.limit or config.max_problems
    if spec.path is None:
        try:
            frame = TableReader(config.problems_dir).scan().filter(pl.col("split") == "test")
            frame = frame.sort("problem_id").collect()
        except Exception as e:
            raise StageInputError(
                f"benchmark {spec.name!r}: cannot read the test split of {config.problems_dir} "
                f"(has the problems stage run?): {e}"
            ) from e
        rows = [Problem(r["problem_id"], r["problem"], r["answer"]) for r in frame.to_dicts()]
    else:
        frame = read_benchmark(spec)
        rows = [
            Problem(f"{spec.name}-{row}", problem, answer)
            for row, problem, answer in frame.select("benchmark_row", "problem", "answer").rows()
        ]
    if not rows:
        raise StageInputError(f"benchmark {spec.name!r} has no problems")
    return rows[:limit] if limit else rows


@dataclass
class Engines:
    """What the methods run on (built by the recipe; tests may build small real ones)."""

    encode: Callable[[str], list[int]]  # problem text -> prompt token ids
    decode: Callable[[tuple[int, ...]], str]  # response ids -> text for the grader
    sampler: object  # BlockSampler
    scorer: object  # ValueScorer
    grader: object  # tracefactory.grading.Grader
    policy_shape: ModelShape


def run_benchmark(
    problems: list[Problem], config: EvaluateConfig, engines: Engines, run_seed: int
) -> dict:
    """Run every method on ``problems``; return the benchmark's metrics (``summarise``)."""
    runs = _Runs()
    progress = Progress("evaluate", len(problems), unit="problems", interval_s=0.0)
    for start in range(0, len(problems), config.problems_per_batch):
        batch = problems[start : start + config.problems_per_batch]
        _run_batch(batch, config, engines, run_seed, runs)
        progress.advance(len(batch))
    progress.close()
    _grade(runs, problems, engines)
    return summarise(runs, len(problems), config)


def _run_batch(batch, config: EvaluateConfig, engines: Engines, run_seed: int, runs) -> None:
    prompts = [tuple(engines.encode(p.problem)) for p in batch]
    keys = [p.key for p in batch]
    pool = max(config.budgets)
    traces, tally = sample_independent(
        prompts, keys, pool, engines.sampler, engines.scorer,
        config.sampling.max_response_tokens, engines.policy_shape, run_seed,
    )  # fmt: skip
    runs.add(("independent", pool, 0), traces, tally)
    selections = [Selection.VALUE] + ([Selection.RANDOM] if config.random_control else [])
    for total in config.search_budgets:
        for selection in selections:
            settings = config.search_settings(total, selection)
            method = "vgs" if selection is Selection.VALUE else "random"
            for seed_index in range(config.search_seeds):
                seed = derive_seed(run_seed, "evaluate", method, seed_index)
                traces, tally = beam_search(
                    prompts, keys, settings, engines.sampler, engines.scorer,
                    engines.policy_shape, seed,
                )  # fmt: skip
                runs.add((method, total, seed_index), traces, tally)


def _grade(runs: _Runs, problems: list[Problem], engines: Engines) -> None:
    """Grade every trace against its problem's gold answer (one batched grader call)."""
    flat = [
        (trace, problem)
        for per_problem in runs.traces.values()
        for problem, traces in zip(problems, per_problem, strict=True)
        for trace in traces
    ]
    verdicts = engines.grader.grade_many(
        [(engines.decode(t.response_ids), p.answer) for t, p in flat],
        truncated=[t.truncated for t, _ in flat],
    )
    for (trace, _), verdict in zip(flat, verdicts, strict=True):
        trace.correct = verdict.label is TrajectoryClass.CORRECT
        trace.answer_key = (
            verdict.answer if verdict.label is not TrajectoryClass.INCOMPLETE else None
        )
    grouper = AnswerGrouper(engines.grader)
    for per_problem in runs.traces.values():
        groups = grouper.group_many([[t.answer_key for t in traces] for traces in per_problem])
        for traces, problem_groups in zip(per_problem, groups, strict=True):
            for trace, group in zip(traces, problem_groups, strict=True):
                trace.group = group


def _independent_trials(traces: list[Trace], budget: int) -> dict[str, list[float]]:
    """Per method, the accuracy of each disjoint subset of ``budget`` samples of the pool."""
    subsets = [traces[i : i + budget] for i in range(0, len(traces) - budget + 1, budget)]
    groups = [[t.group for t in subset] for subset in subsets]
    return {
        "mv": [majority_vote(s, g) for s, g in zip(subsets, groups, strict=True)],
        "wmv": [weighted_majority_vote(s, g) for s, g in zip(subsets, groups, strict=True)],
        "bon": [best_of_n(s) for s in subsets],
    }


def summarise(runs: _Runs, num_problems: int, config: EvaluateConfig) -> dict:
    """Metrics of one benchmark: method key -> interval + compute, and ``paired`` differences."""
    per_problem: dict[str, list[list[float]]] = {}
    compute: dict[str, dict[str, float]] = {}
    pool = max(config.budgets)
    independent = runs.traces[("independent", pool, 0)]
    tally = runs.compute[("independent", pool)]
    per_problem["pass@1"] = [[pass_at_1(traces)] for traces in independent]
    compute["pass@1"] = _no_value(tally.scaled(1 / (pool * num_problems)))
    for budget in sorted(config.budgets):
        trials = [_independent_trials(traces, budget) for traces in independent]
        for method in ("mv", "wmv", "bon"):
            per_problem[f"{method}@{budget}"] = [t[method] for t in trials]
            scaled = tally.scaled(budget / (pool * num_problems))
            compute[f"{method}@{budget}"] = _no_value(scaled) if method == "mv" else scaled
    for (method, total, seed_index), traces in sorted(runs.traces.items()):
        if method == "independent":
            continue
        key = f"{method}@{total}"
        rows = per_problem.setdefault(key, [[] for _ in range(num_problems)])
        for row, problem_traces in zip(rows, traces, strict=True):
            row.append(weighted_majority_vote(problem_traces, [t.group for t in problem_traces]))
        if seed_index == 0:
            compute[key] = runs.compute[(method, total)].scaled(
                1 / (num_problems * config.search_seeds)
            )
    return _intervals(per_problem, compute, config)


def _no_value(compute: dict[str, float]) -> dict[str, float]:
    """Compute of a method that never uses the value model (pass@1, MV)."""
    return {**compute, "value_tokens": 0, "value_tokens_full": 0, "value_flops": 0.0,
            "flops": compute["gen_flops"]}  # fmt: skip


def _intervals(per_problem, compute, config: EvaluateConfig) -> dict:
    metrics: dict = {}
    means = {}
    for key, trials in per_problem.items():
        means[key] = stats.problem_means(trials)
        boot = stats.bootstrap_ci(means[key], config.bootstrap_resamples)
        within = stats.within_problem_ci(trials)
        metrics[key] = {
            **boot.as_dict(),
            "ci_within_low": within.ci_low,
            "ci_within_high": within.ci_high,
            **compute[key],
        }
    paired = {}
    for total in config.search_budgets:
        for first, second in PAIRS:
            a, b = f"{first}@{total}", f"{second}@{total}"
            if a in means and b in means:
                paired[f"{a}-{b}"] = stats.paired_ci(means[a], means[b]).as_dict()
    metrics["paired"] = paired
    return _finite(metrics)


def _finite(value):
    """NaN becomes None, so metrics.json is valid JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
