"""The evaluate stage end to end on a miniature config (random tiny policy and value model)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from shared_files import BENCHMARKS

from tracefactory.config import BenchmarkConfig
from tracefactory.generation.config import PolicyConfig
from tracefactory.search.config import EvaluateConfig
from tracefactory.search.runner import run_evaluation

AIME24 = BENCHMARKS / "aime24.jsonl"


def mini_config(tmp_path, policy_dir, value_model_dir, problems_dir, **overrides):
    fields = dict(
        problems_dir=str(problems_dir),
        value_model_dir=str(value_model_dir),
        output_dir=str(tmp_path / "reports"),
        policy=PolicyConfig(model=str(policy_dir), batch_size=64),
        sampling={"max_response_tokens": 24},
        budgets=[2, 4],
        search_budgets=[4],
        search={"block_tokens": 8},
        search_seeds=2,
        grader={"workers": 1},
        bootstrap_resamples=200,
    )
    return EvaluateConfig(**{**fields, **overrides})


def test_budgets_that_do_not_split_into_beams_are_rejected():
    with pytest.raises(ValidationError, match="search_budgets"):
        EvaluateConfig(search_budgets=[6], search={"dvts_searches": 4})
    with pytest.raises(ValidationError, match="multiple of beam_width"):
        EvaluateConfig(search_budgets=[6], search={"dvts_searches": 2})


@pytest.mark.integration
def test_evaluate_writes_metrics_plots_and_report(
    tmp_path, policy_dir, value_model_dir, problems_dir
):
    config = mini_config(tmp_path, policy_dir, value_model_dir, problems_dir)
    run_evaluation(config, run_seed=7)
    out = tmp_path / "reports"
    metrics = json.loads((out / "metrics.json").read_text())
    methods = metrics["synthetic_test"]
    for key in ("pass@1", "mv@2", "mv@4", "bon@4", "wmv@4", "vgs@4", "random@4"):
        for field in ("mean", "ci_low", "ci_high", "gen_tokens", "flops"):
            assert methods[key][field] is not None, (key, field)
        assert methods[key]["ci_low"] <= methods[key]["mean"] <= methods[key]["ci_high"]
    assert set(methods["paired"]) == {"vgs@4-mv@4", "wmv@4-mv@4", "vgs@4-random@4"}
    assert methods["mv@4"]["value_flops"] == 0
    assert methods["vgs@4"]["value_tokens"] < methods["vgs@4"]["value_tokens_full"]
    for name in (
        "figures/synthetic_test_budget.png",
        "figures/synthetic_test_flops.png",
        "report.md",
    ):
        assert (out / name).stat().st_size > 0
    rows = json.loads((out / "plots" / "accuracy.json").read_text())
    assert {r["method"] for r in rows} >= {"mv", "vgs", "random"}


@pytest.mark.integration
@pytest.mark.skipif(not AIME24.is_file(), reason="shared benchmarks not present")
def test_a_real_benchmark_file_flows_through(tmp_path, policy_dir, value_model_dir, problems_dir):
    config = mini_config(
        tmp_path, policy_dir, value_model_dir, problems_dir,
        benchmarks=[BenchmarkConfig(name="aime24", path=str(AIME24), limit=3)],
        policy=PolicyConfig(model=str(policy_dir), batch_size=64, template="tiny"),
        search_seeds=1, random_control=False, scorer="full",
    )  # fmt: skip
    metrics = run_evaluation(config, run_seed=1)
    assert set(metrics) == {"aime24"}
    assert 0.0 <= metrics["aime24"]["vgs@4"]["mean"] <= 1.0
