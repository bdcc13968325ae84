"""The per-sample table of the evaluate stage, and every aggregate counted from it.

Each shard of ``data/evaluate`` (``schemas/evaluate_samples.yaml``) is one method at one budget on
one batch of problems: every response with its verdict and value. Metrics are recomputed from the
table, never from memory, so a resumed run and an uninterrupted one report the same numbers, and a
new aggregate needs no new generation. Answers are grouped into equivalence classes here, over all
responses to a problem, so DVTS pools of several searches vote over consistent classes.
"""

from __future__ import annotations

import math

import polars as pl

from tracefactory.errors import StageInputError
from tracefactory.grading import Grader
from tracefactory.io import TableReader
from tracefactory.search import stats
from tracefactory.search.config import BonTies, EvaluateConfig, Grouping
from tracefactory.search.evaluate import INDEPENDENT, RANDOM, VGS, MethodRun, Problem
from tracefactory.search.interfaces import Trace
from tracefactory.search.voting import (
    AnswerGrouper,
    best_of_n,
    majority_vote,
    pass_at_n,
    weighted_majority_vote,
)

_COMPUTE = (
    "gen_tokens", "gen_flops", "value_tokens", "value_tokens_full", "value_flops",
    "value_flops_full",
)  # fmt: skip
_KEY = ["problem_id", "method", "budget", "seed"]


def shard_name(benchmark: str, batch: int, method: str, budget: int) -> str:
    """The shard holding one method at one budget on one batch of a benchmark."""
    return f"{benchmark}.b{batch:05d}.{method}.n{budget}"


def sample_rows(benchmark: str, problems: list[Problem], run: MethodRun) -> list[dict]:
    """Rows of the sample table for one graded run; its compute is shared evenly by its rows."""
    rows = []
    for problem, searches in zip(problems, run.traces, strict=True):
        for seed, traces in enumerate(searches):
            for index, trace in enumerate(traces):
                rows.append(
                    {
                        "sample_id": f"{benchmark}/{problem.key}/{run.method}/{run.budget}/"
                        f"{seed}/{index}",
                        "benchmark": benchmark, "problem_id": problem.key,
                        "method": run.method, "budget": run.budget, "seed": seed,
                        "sample_index": index, "token_ids": list(trace.response_ids),
                        "truncated": trace.truncated, "answer": trace.answer_key,
                        "label": trace.label, "value": trace.value,
                    }
                )  # fmt: skip
    share = run.tally.scaled(1 / max(len(rows), 1))
    for row in rows:
        row.update({name: share[name] for name in _COMPUTE})
    return rows


def with_groups(
    frame: pl.DataFrame, grouper: AnswerGrouper, grouping: Grouping = Grouping.CLOSURE
) -> pl.DataFrame:
    """Add ``group``: each answer's equivalence class among all answers to its problem."""
    answers = (
        frame.filter(pl.col("answer").is_not_null())
        .group_by("problem_id")
        .agg(pl.col("answer").unique().sort())
        .sort("problem_id")
    )
    groups = grouper.group_many(answers["answer"].to_list(), grouping)
    mapping = pl.DataFrame(
        {
            "problem_id": answers["problem_id"].to_list(),
            "answer": answers["answer"].to_list(),
            "group": groups,
        },
        schema={"problem_id": pl.String, "answer": pl.List(pl.String), "group": pl.List(pl.Int64)},
    ).explode("answer", "group")
    return frame.join(mapping, on=["problem_id", "answer"], how="left", nulls_equal=False)


def count_metrics(config: EvaluateConfig) -> dict:
    """Every benchmark's metrics, counted from the finished sample table (answer classes by a
    grader of this process's own: the workers' are gone)."""
    table = TableReader(config.samples_dir).scan().drop("token_ids")
    with Grader(config.grader) as grader:
        grouper = AnswerGrouper(grader)
        return {
            spec.name: summarise(
                table.filter(pl.col("benchmark") == spec.name).collect(), config, grouper
            )
            for spec in config.benchmarks
        }


def _runs(frame: pl.DataFrame, method: str, budget: int) -> dict[str, list[list[Trace]]]:
    """Per problem, per repetition (seed), its traces in sample order."""
    rows = frame.filter((pl.col("method") == method) & (pl.col("budget") == budget)).sort(
        _KEY + ["sample_index"]
    )
    runs: dict[str, list[list[Trace]]] = {}
    for problem, seed, value, truncated, answer, label, group in rows.select(
        "problem_id", "seed", "value", "truncated", "answer", "label", "group"
    ).iter_rows():
        per_seed = runs.setdefault(problem, [])
        if len(per_seed) <= seed:
            per_seed.append([])
        trace = Trace((), value, truncated, answer_key=answer, correct=label == 1, label=label,
                      group=group)  # fmt: skip
        per_seed[seed].append(trace)
    return runs


def _compute(frame: pl.DataFrame, method: str, budget: int, per: float) -> dict[str, float]:
    """The method's compute per problem and run: its rows' sums divided by ``per``."""
    sums = frame.filter((pl.col("method") == method) & (pl.col("budget") == budget)).select(
        [pl.col(name).sum() for name in _COMPUTE]
    )
    out = {name: float(sums[name][0]) / per for name in _COMPUTE}
    out["flops"] = out["gen_flops"] + out["value_flops"]
    out["flops_full"] = out["gen_flops"] + out["value_flops_full"]
    return out


def _no_value(compute: dict[str, float]) -> dict[str, float]:
    """Compute of a method that never uses the value model (pass@N, MV)."""
    return {**compute, "value_tokens": 0.0, "value_tokens_full": 0.0, "value_flops": 0.0,
            "value_flops_full": 0.0, "flops": compute["gen_flops"],
            "flops_full": compute["gen_flops"]}  # fmt: skip


def _votes(traces: list[Trace], bon_ties: BonTies) -> dict[str, float]:
    groups = [t.group for t in traces]
    return {
        "mv": majority_vote(traces, groups),
        "wmv": weighted_majority_vote(traces, groups),
        "bon": best_of_n(traces, bon_ties),
        "pass": pass_at_n(traces),
    }


def _independent(frame, config: EvaluateConfig, trials: dict, compute: dict) -> None:
    pool = config.independent_pool
    runs = _runs(frame, INDEPENDENT, pool)
    problems = sorted(runs)
    samples = [runs[p][0] for p in problems]
    trials["pass@1"] = [[float(t.correct) for t in traces] for traces in samples]
    per_sample = _compute(frame, INDEPENDENT, pool, len(problems) * pool)
    compute["pass@1"] = _no_value(per_sample)
    for budget in sorted(config.budgets):
        votes = [
            [
                _votes(traces[i : i + budget], config.bon_ties)
                for i in range(0, pool - budget + 1, budget)
            ]
            for traces in samples
        ]
        scaled = {name: value * budget for name, value in per_sample.items()}
        for family in ("mv", "wmv", "bon", "pass"):
            if family == "pass" and budget == 1:
                continue
            key = f"{family}@{budget}"
            trials[key] = [[v[family] for v in subsets] for subsets in votes]
            compute[key] = _no_value(scaled) if family in ("mv", "pass") else scaled


def _searches(frame, config: EvaluateConfig, trials: dict, compute: dict) -> None:
    methods = [VGS] + ([RANDOM] if config.random_control else [])
    for budget in config.search_budgets:
        reps = config.repetitions(budget)
        for method in methods:
            runs = _runs(frame, method, budget)
            problems = sorted(runs)
            per_run = _compute(frame, method, budget, len(problems) * reps)
            votes = [[_votes(search, config.bon_ties) for search in runs[p]] for p in problems]
            trials[f"{method}@{budget}"] = [[v["wmv"] for v in seeds] for seeds in votes]
            compute[f"{method}@{budget}"] = per_run
            if method == VGS:  # the paper's ablation: BoN over the beams, and the oracle
                for family in ("bon", "pass"):
                    trials[f"vgs_{family}@{budget}"] = [[v[family] for v in s] for s in votes]
                    compute[f"vgs_{family}@{budget}"] = per_run
            if method == VGS and budget == config.dvts_budget:
                _dvts(runs, problems, per_run, config, trials, compute)


def _dvts(runs, problems, per_run, config: EvaluateConfig, trials: dict, compute: dict) -> None:
    """DVTS with R searches: disjoint groups of R repetitions pooled, one WMV each."""
    for searches in config.dvts_searches:
        key = f"dvts@{config.dvts_budget * searches}"
        trials[key] = [
            [
                weighted_majority_vote(pool, [t.group for t in pool])
                for pool in (
                    [t for search in runs[p][i : i + searches] for t in search]
                    for i in range(0, len(runs[p]) - searches + 1, searches)
                )
            ]
            for p in problems
        ]
        compute[key] = {name: value * searches for name, value in per_run.items()}


def summarise(frame: pl.DataFrame, config: EvaluateConfig, grouper: AnswerGrouper) -> dict:
    """Metrics of one benchmark's rows: method key -> mean, CIs and compute; ``paired``.

    Raises:
        StageInputError: the rows do not hold every configured method (an incomplete table).
    """
    frame = with_groups(frame, grouper, config.grouping)
    trials: dict[str, list[list[float]]] = {}
    compute: dict[str, dict[str, float]] = {}
    _independent(frame, config, trials, compute)
    _searches(frame, config, trials, compute)
    counts = {len(t) for t in trials.values()}
    if len(counts) != 1:
        raise StageInputError(
            f"methods were run on different numbers of problems: {sorted(counts)} (an incomplete "
            "samples table: rerun the evaluate stage to finish it)"
        )
    return _intervals(trials, compute, config)


def _intervals(trials: dict, compute: dict, config: EvaluateConfig) -> dict:
    metrics: dict = {}
    means = {}
    for key, values in trials.items():
        means[key] = stats.problem_means(values)
        boot = stats.bootstrap_ci(means[key], config.bootstrap_resamples)
        within = stats.within_problem_ci(values)
        metrics[key] = {
            **boot.as_dict(),
            "ci_within_low": within.ci_low,
            "ci_within_high": within.ci_high,
            "trials": len(values[0]),
            **compute[key],
        }
    metrics["paired"] = {
        f"{a}-{b}": stats.paired_ci(means[a], means[b]).as_dict()
        for a, b in _pairs(config)
        if a in means and b in means
    }
    return _finite(metrics)


def _pairs(config: EvaluateConfig) -> list[tuple[str, str]]:
    """The reported paired differences: VGS against MV, WMV and the random control; WMV
    against MV; VGS@N against WMV over as many answers as its final vote has (its N / w beams),
    which separates the search's guidance from its having fewer voters than N samples; DVTS
    against MV at the same total budget."""
    pairs = []
    for n in config.search_budgets:
        pairs += [(f"vgs@{n}", f"mv@{n}"), (f"vgs@{n}", f"random@{n}")]
        pairs += [(f"vgs@{n}", f"wmv@{n}"), (f"wmv@{n}", f"mv@{n}")]
        voters = n // config.search.beam_width
        if voters in config.budgets and voters != n:
            pairs.append((f"vgs@{n}", f"wmv@{voters}"))
    if config.dvts_budget:
        pairs += [(f"dvts@{config.dvts_budget * r}", f"mv@{config.dvts_budget * r}")
                  for r in config.dvts_searches]  # fmt: skip
    return pairs


def _finite(value):
    """NaN becomes None, so metrics.json is valid JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
