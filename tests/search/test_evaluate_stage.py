"""The evaluate recipe end to end on a miniature config (random tiny policy and value model):
reports, the per-sample table, DVTS, the bounded scorer, and resuming after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from golden import check_golden
from locations import BENCHMARKS, REPO, needs_shared_file
from pydantic import ValidationError

from tracefactory.config import BenchmarkConfig, RayConfig
from tracefactory.generation.config import PolicyConfig
from tracefactory.io import TableReader
from tracefactory.recipes import evaluate_search
from tracefactory.search.config import EvaluateConfig

RECIPE = REPO / "train" / "evaluate_search.py"  # the script a checkout runs

AIME24 = BENCHMARKS / "aime24.jsonl"


def mini_fields(tmp_path, policy_dir, value_model_dir, problems_dir) -> dict:
    return dict(
        problems_dir=str(problems_dir),
        value_model=str(value_model_dir),
        output_dir=str(tmp_path / "reports"),
        samples_dir=str(tmp_path / "samples"),
        policy={"model": str(policy_dir), "batch_size": 64},
        sampling={"max_response_tokens": 24},
        budgets=[2, 4],
        search_budgets=[4],
        search={"block_tokens": 8},
        search_seeds=2,
        grader={"workers": 1},
        bootstrap_resamples=200,
    )


def mini_config(tmp_path, policy_dir, value_model_dir, problems_dir, **overrides):
    fields = mini_fields(tmp_path, policy_dir, value_model_dir, problems_dir)
    return EvaluateConfig(**{**fields, **overrides})


def test_budgets_that_do_not_split_into_beams_are_rejected():
    with pytest.raises(ValidationError, match="multiple of beam_width"):
        EvaluateConfig(search_budgets=[6], search={"beam_width": 4})


def test_dvts_sweep_must_pool_a_search_budget_in_divisible_groups():
    with pytest.raises(ValidationError, match="dvts_budget"):
        EvaluateConfig(search_budgets=[4], dvts_budget=8, dvts_searches=[2])
    with pytest.raises(ValidationError, match="divide"):
        EvaluateConfig(search_budgets=[4], dvts_budget=4, dvts_searches=[3, 4])
    config = EvaluateConfig(search_budgets=[4, 16], dvts_budget=4, dvts_searches=[2, 4])
    assert config.repetitions(4) == 4 and config.repetitions(16) == 1


@pytest.mark.integration
def test_evaluate_writes_samples_metrics_plots_and_report(
    tmp_path, policy_dir, value_model_dir, problems_dir
):
    config = mini_config(tmp_path, policy_dir, value_model_dir, problems_dir)
    evaluate_search.evaluate(config, run_seed=7, ray_config=None)
    check_golden("evaluate", tmp_path / "samples")
    out = tmp_path / "reports"
    metrics = json.loads((out / "metrics.json").read_text())
    methods = metrics["synthetic_test"]
    for key in ("pass@1", "pass@4", "mv@2", "mv@4", "bon@4", "wmv@4", "vgs@4", "vgs_bon@4",
                "vgs_pass@4", "random@4"):  # fmt: skip
        for field in ("mean", "ci_low", "ci_high", "ci_within_low", "gen_tokens", "flops"):
            assert methods[key][field] is not None, (key, field)
        assert methods[key]["ci_low"] <= methods[key]["mean"] <= methods[key]["ci_high"]
    assert methods["vgs@4"]["trials"] == 2 and methods["pass@1"]["trials"] == 4
    assert set(methods["paired"]) == {
        "vgs@4-mv@4", "wmv@4-mv@4", "vgs@4-random@4", "vgs@4-wmv@4", "vgs@4-wmv@2"
    }  # fmt: skip
    assert methods["mv@4"]["value_flops"] == 0
    assert methods["vgs@4"]["value_tokens"] < methods["vgs@4"]["value_tokens_full"]
    samples = TableReader(tmp_path / "samples").read().to_pylist()
    assert {r["method"] for r in samples} == {"independent", "vgs", "random"}
    assert len([r for r in samples if r["method"] == "independent"]) == 6 * 4
    report = (out / "report.md").read_text()
    assert "![accuracy vs budget](figures/synthetic_test_budget.png)" in report
    assert "## Configuration" in report and "2 search seed(s)" in report
    for name in ("figures/synthetic_test_budget.png", "figures/synthetic_test_flops.png"):
        assert (out / name).stat().st_size > 0
    rows = json.loads((out / "plots" / "accuracy.json").read_text())
    assert {r["method"] for r in rows} >= {"mv", "vgs", "random", "pass@1", "pass"}
    assert all(0 <= r["accuracy"] <= 100 for r in rows)


def test_an_independent_pool_smaller_than_a_budget_is_rejected():
    with pytest.raises(ValidationError, match="independent_samples 8 is below"):
        EvaluateConfig(budgets=[4, 16], independent_samples=8)


@pytest.mark.integration
def test_a_larger_independent_pool_gives_each_budget_more_trials(
    tmp_path, policy_dir, value_model_dir, problems_dir
):
    config = mini_config(tmp_path, policy_dir, value_model_dir, problems_dir, independent_samples=8)
    methods = evaluate_search.evaluate(config, run_seed=7, ray_config=None)["synthetic_test"]
    assert methods["pass@1"]["trials"] == 8
    assert methods["mv@2"]["trials"] == 4 and methods["mv@4"]["trials"] == 2
    samples = TableReader(tmp_path / "samples").read().to_pylist()
    independent = [r for r in samples if r["method"] == "independent"]
    assert len(independent) == 6 * 8 and {r["budget"] for r in independent} == {8}
    # the pool's first 4 samples are the default pool's: the same seeds
    (tmp_path / "default").mkdir()
    default = mini_config(tmp_path / "default", policy_dir, value_model_dir, problems_dir)
    evaluate_search.evaluate(default, run_seed=7, ray_config=None)
    first = {
        (r["problem_id"], r["sample_index"]): r["token_ids"]
        for r in TableReader(tmp_path / "default" / "samples").read().to_pylist()
        if r["method"] == "independent"
    }
    assert first == {
        (r["problem_id"], r["sample_index"]): r["token_ids"]
        for r in independent
        if r["sample_index"] < 4
    }


@pytest.mark.integration
def test_two_ray_workers_write_the_table_one_process_writes(
    tmp_path, policy_dir, value_model_dir, problems_dir
):
    """Shards spread over two workers (each with its own engines, taking shards in whatever order
    they free up) give the same samples as one process running them in order: the golden digest
    of the local run."""
    import ray

    config = mini_config(
        tmp_path, policy_dir, value_model_dir, problems_dir, workers={"count": 2}, use_ray=True
    )
    try:
        evaluate_search.evaluate(config, run_seed=7, ray_config=RayConfig(num_cpus=2))
    finally:
        ray.shutdown()
    check_golden("evaluate", tmp_path / "samples")
    assert len(TableReader(tmp_path / "samples").shard_names) == 3  # independent, vgs, random


def run_recipe(params: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, str(RECIPE), "--params", str(params)],
        cwd=params.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def finished_shards(folder: Path) -> list[Path]:
    """Shards renamed into place (not the hidden temporary files of one being written)."""
    return [p for p in folder.glob("*.parquet") if not p.name.startswith(".")]


def paper_path_params(folder: Path, policy_dir, value_model_dir, problems_dir) -> Path:
    """The paper profile's evaluation path in miniature: DVTS sweep, bounded incremental scorer,
    per-sample table, problems in several batches (several shards per method)."""
    folder.mkdir()
    section = mini_fields(folder, policy_dir, value_model_dir, problems_dir)
    section.update(
        search={"block_tokens": 8, "line_blocks": False, "max_children_per_parent": None},
        search_seeds=1, dvts_budget=4, dvts_searches=[2, 4], value_cache_tokens=64,
        problems_per_batch=2, use_ray=False,
    )  # fmt: skip
    (folder / "params.yaml").write_text(yaml.safe_dump({"seed": 3, "evaluate": section}))
    return folder / "params.yaml"


@pytest.mark.integration
def test_paper_path_resumes_after_a_kill_to_the_same_metrics(
    tmp_path, policy_dir, value_model_dir, problems_dir
):
    full = paper_path_params(tmp_path / "full", policy_dir, value_model_dir, problems_dir)
    uninterrupted = run_recipe(full)
    assert uninterrupted.wait(timeout=600) == 0, uninterrupted.stderr.read()

    params = paper_path_params(tmp_path / "killed", policy_dir, value_model_dir, problems_dir)
    killed = run_recipe(params)
    samples = tmp_path / "killed" / "samples"
    while killed.poll() is None and len(finished_shards(samples)) < 2:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (samples / "_manifest.json").exists()
    resumed = run_recipe(params)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    assert "already complete" in resumed.stderr.read()

    expected = json.loads((tmp_path / "full" / "reports" / "metrics.json").read_text())
    got = json.loads((tmp_path / "killed" / "reports" / "metrics.json").read_text())
    assert got == expected
    methods = got["synthetic_test"]
    assert methods["vgs@4"]["trials"] == 4  # search_seeds * max(R) searches at dvts_budget
    assert methods["dvts@8"]["trials"] == 2 and methods["dvts@16"]["trials"] == 1
    assert methods["dvts@16"]["gen_tokens"] == pytest.approx(4 * methods["vgs@4"]["gen_tokens"])
    run = json.loads((tmp_path / "killed" / "reports" / "run.json").read_text())
    assert run["shards_resumed"] >= 2 and run["table_counts"]["uncached_value_nodes"] > 0
    table = TableReader(samples)
    assert table.num_rows == TableReader(tmp_path / "full" / "samples").num_rows
    assert len(table.shard_names) == 3 * 3  # 3 batches x (independent, vgs@4, random@4)


@pytest.mark.integration
@needs_shared_file(AIME24)
def test_a_real_benchmark_file_flows_through(tmp_path, policy_dir, value_model_dir, problems_dir):
    config = mini_config(
        tmp_path, policy_dir, value_model_dir, problems_dir,
        benchmarks=[BenchmarkConfig(name="aime24", path=str(AIME24), limit=3)],
        policy=PolicyConfig(model=str(policy_dir), batch_size=64, template="tiny"),
        search_seeds=1, random_control=False, scorer="full",
    )  # fmt: skip
    metrics = evaluate_search.evaluate(config, run_seed=1, ray_config=None)
    assert set(metrics) == {"aime24"}
    assert 0.0 <= metrics["aime24"]["vgs@4"]["mean"] <= 1.0


def test_recipe_set_overrides_are_checked_like_the_cli(tmp_path):
    from tracefactory.errors import ConfigError

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"evaluate": {"search_seeds": 1}}))
    with pytest.raises(ConfigError, match="search_seeds"):
        evaluate_search.main(
            ["--params", str(tmp_path / "params.yaml"), "--set", "evaluate.search_seeds=0"]
        )
