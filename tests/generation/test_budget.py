"""The budget guard: a generation stage stops starting shards once its budget is spent, keeps
what it finished, and a rerun continues to the same table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from tracefactory.budget import Budget, BudgetExhaustedError, RunConfig
from tracefactory.generation.config import PolicyConfig, RollinConfig, SimulationConfig
from tracefactory.generation.rollin import run_rollin
from tracefactory.io import TableReader
from tracefactory.params import Params


def _config(problems: Path, output: Path) -> RollinConfig:
    policy = PolicyConfig(
        name="sim",
        model="tracefactory:tiny",
        backend="simulated",
        simulation=SimulationConfig(problems_dir=str(problems)),
    )
    return RollinConfig(
        problems_dir=str(problems),
        output_dir=str(output),
        samples_per_problem=3,
        policies=[policy],
        problems_per_shard=2,
        use_ray=False,
    )


def _rows(folder: Path) -> pl.DataFrame:
    return TableReader(folder).scan().collect().sort("rollin_id")


def test_stops_on_its_budget_keeps_the_finished_shards_and_resumes_to_the_same_table(
    make_problems, tmp_path
):
    problems = make_problems(tmp_path / "problems", 8)  # 4 shards of 2 problems
    stopped = _config(problems, tmp_path / "rollins")
    budget = Budget(RunConfig(max_generated_tokens=1), "rollin")
    with pytest.raises(BudgetExhaustedError, match=r"rollin: budget reached .* 3 shards not"):
        run_rollin(stopped, run_seed=7, budget=budget)
    assert budget.shards == 1 and budget.tokens > 0
    assert len(list((tmp_path / "rollins").glob("*.parquet"))) == 1  # kept, not finalized

    resumed = run_rollin(stopped, run_seed=7, budget=Budget(RunConfig(), "rollin"))
    assert resumed.shards_skipped == 1
    whole = run_rollin(_config(problems, tmp_path / "whole"), run_seed=7)
    assert _rows(tmp_path / "rollins").equals(_rows(tmp_path / "whole"))
    assert resumed.rows == whole.rows == 8 * 3


def test_a_gpu_hour_budget_counts_time_times_gpus():
    budget = Budget(RunConfig(max_gpu_hours=1.0), "rollout")
    budget.spend({"tokens": 10}, seconds=1800, gpus=1)
    assert not budget.exhausted()
    budget.spend({"tokens": 10}, seconds=900, gpus=2)
    assert budget.exhausted() and budget.gpu_hours == pytest.approx(1.0)
    assert "spent 1.00 GPU-hours and 20 generated tokens on 2 shards" in str(budget.stopped(5))


@pytest.mark.integration
def test_on_ray_the_cli_exits_non_zero_with_one_line_and_a_rerun_finishes(make_problems, tmp_path):
    problems = make_problems(tmp_path / "problems", 8)
    data = Params(rollin=_config(problems, tmp_path / "rollins")).model_dump(mode="json")
    data["rollin"]["use_ray"] = True
    data["rollin"]["workers"] = {"count": 1, "num_cpus": 1}
    data["run"]["max_generated_tokens"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    cli = [str(Path(sys.executable).parent / "tracefactory"), "rollin"]
    env = {**os.environ, "TRACEFACTORY_LOG_LEVEL": "WARNING", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    run = subprocess.run(cli, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 2, run.stderr[-2000:]
    (line,) = [x for x in run.stderr.splitlines() if x.startswith("error:")]
    assert "budget reached" in line and "Rerun `tracefactory rollin` to continue" in line
    kept = len(list((tmp_path / "rollins").glob("*.parquet")))
    assert 1 <= kept < 4  # the shard that spent the budget; none started after it

    data["run"]["max_generated_tokens"] = None
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    rerun = subprocess.run(cli, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert TableReader(tmp_path / "rollins").manifest.rows == 8 * 3
