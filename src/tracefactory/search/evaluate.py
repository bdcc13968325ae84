"""The evaluate recipe's components: benchmarks, the engines the methods run on, one method on
one batch of problems, and grading.

Methods: ``independent`` (one pool of ``max(budgets)`` samples per problem, from which pass@1,
pass@N, MV, BoN and WMV are all counted), ``vgs`` (beam search guided by value, repeated
``repetitions(N)`` times; DVTS pools those repetitions) and ``random`` (the same search choosing
survivors at random). The shards over benchmarks, batches and methods are the evaluate stage's
(``stage.py``), run by the recipe ``tracefactory.recipes.evaluate_search``; aggregates are counted
from the per-sample table (``samples.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from tracefactory.config import BenchmarkConfig
from tracefactory.errors import StageInputError
from tracefactory.io import TableReader, read_benchmark
from tracefactory.schemas import TrajectoryClass
from tracefactory.search.beam import beam_search
from tracefactory.search.compute import ComputeTally, ModelShape
from tracefactory.search.config import EvaluateConfig, Selection
from tracefactory.search.independent import sample_independent
from tracefactory.search.interfaces import Trace
from tracefactory.seeds import derive_seed

INDEPENDENT, VGS, RANDOM = "independent", "vgs", "random"  # the methods of the sample table


@dataclass(frozen=True)
class Problem:
    key: str
    problem: str
    answer: str


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
        except StageInputError as e:
            raise StageInputError(
                f"benchmark {spec.name!r} is the test split of {config.problems_dir}: {e}"
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


@dataclass
class MethodRun:
    """One method at one budget on one batch: per problem, per repetition, its traces."""

    method: str
    budget: int
    traces: list[list[list[Trace]]]
    tally: ComputeTally


def method_plan(config: EvaluateConfig) -> list[tuple[str, int]]:
    """Every (method, budget) the evaluation runs on each batch, in order."""
    plan = [(INDEPENDENT, config.independent_pool)]
    methods = [VGS] + ([RANDOM] if config.random_control else [])
    plan += [(method, budget) for budget in config.search_budgets for method in methods]
    return plan


def run_method(
    batch: list[Problem],
    method: str,
    budget: int,
    config: EvaluateConfig,
    engines: Engines,
    run_seed: int,
) -> MethodRun:
    """Run one method at one budget on ``batch`` (all problems in lockstep) and grade it."""
    prompts = [tuple(engines.encode(p.problem)) for p in batch]
    keys = [p.key for p in batch]
    if method == INDEPENDENT:
        traces, tally = sample_independent(
            prompts, keys, budget, engines.sampler, engines.scorer,
            config.sampling.max_response_tokens, engines.policy_shape, run_seed,
        )  # fmt: skip
        per_problem = [[problem_traces] for problem_traces in traces]
    else:
        selection = Selection.VALUE if method == VGS else Selection.RANDOM
        seed = derive_seed(run_seed, "evaluate", method, budget)
        per_problem, tally = beam_search(
            prompts, keys, config.search_settings(budget, selection), engines.sampler,
            engines.scorer, engines.policy_shape, seed, config.repetitions(budget),
        )  # fmt: skip
    run = MethodRun(method, budget, per_problem, tally)
    grade(run, batch, engines)
    return run


def grade(run: MethodRun, problems: list[Problem], engines: Engines) -> None:
    """Grade every trace against its problem's gold answer (one batched grader call)."""
    flat = [
        (trace, problem)
        for problem, searches in zip(problems, run.traces, strict=True)
        for traces in searches
        for trace in traces
    ]
    verdicts = engines.grader.grade_many(
        [(engines.decode(t.response_ids), p.answer) for t, p in flat],
        truncated=[t.truncated for t, _ in flat],
    )
    for (trace, _), verdict in zip(flat, verdicts, strict=True):
        trace.label = int(verdict.label)
        trace.correct = verdict.label is TrajectoryClass.CORRECT
        trace.answer_key = (
            verdict.answer if verdict.label is not TrajectoryClass.INCOMPLETE else None
        )
