"""Killed and resumed runs of the rollin stage on a local Ray give the uninterrupted run's table.

Each run is the real CLI in a subprocess (its own Ray). Baseline: the same params run in this
process without Ray, which also shows results do not depend on the executor.
"""

from __future__ import annotations

import signal
from pathlib import Path

import polars as pl
import psutil
import pytest
import stage_cli

from tracefactory.config import RayConfig, WorkerConfig
from tracefactory.generation.config import RollinConfig, SamplingConfig
from tracefactory.generation.rollin import run_rollin
from tracefactory.io import TableReader
from tracefactory.params import Params

pytestmark = pytest.mark.integration


def _params(tmp_path: Path, problems_dir: Path, tiny_policy, use_ray: bool) -> Params:
    return Params(
        seed=11,
        ray=RayConfig(num_cpus=2, no_progress_timeout_s=120),
        rollin=RollinConfig(
            problems_dir=str(problems_dir),
            output_dir=str(tmp_path / "rollins"),
            samples_per_problem=4,
            policies=[tiny_policy],
            sampling=SamplingConfig(max_response_tokens=160),
            problems_per_shard=2,
            use_ray=use_ray,
            workers=WorkerConfig(count=2, num_cpus=1),
        ),
    )


def _table(directory: Path) -> pl.DataFrame:
    frame = pl.from_arrow(TableReader(directory).read())
    return frame.sort("rollin_id")


@pytest.fixture
def baseline(tmp_path, tiny_policy, make_problems):
    problems = make_problems(tmp_path / "problems", 24)
    params = _params(tmp_path / "baseline", problems, tiny_policy, use_ray=False)
    run_rollin(params.rollin, params.seed)
    return problems, _table(Path(params.rollin.output_dir))


def _check_same(result: pl.DataFrame, expected: pl.DataFrame) -> None:
    assert result["rollin_id"].n_unique() == result.height  # no duplicates
    assert result["rollin_id"].to_list() == expected["rollin_id"].to_list()  # none missing
    assert result.equals(expected)  # same token ids, seeds, finish reasons


def test_driver_killed_then_rerun_gives_the_uninterrupted_table(tmp_path, tiny_policy, baseline):
    problems, expected = baseline
    run_dir = tmp_path / "killed-driver"
    run_dir.mkdir()
    params = _params(run_dir, problems, tiny_policy, use_ray=True)
    output = Path(params.rollin.output_dir)
    first = stage_cli.start("rollin", params, run_dir)
    try:
        stage_cli.wait_for_shards(output, 1, first)
    finally:
        stage_cli.kill_tree(first)
    landed = len(list(output.glob("*.parquet")))
    assert 1 <= landed < 12, f"{landed} shards landed before the kill: nothing left to resume"
    assert not (output / "_manifest.json").exists()
    stage_cli.finish(stage_cli.start("rollin", params, run_dir))
    _check_same(_table(output), expected)


def test_killed_actor_is_replaced_and_its_shard_redone(tmp_path, tiny_policy, baseline):
    problems, expected = baseline
    run_dir = tmp_path / "killed-actor"
    run_dir.mkdir()
    params = _params(run_dir, problems, tiny_policy, use_ray=True)
    output = Path(params.rollin.output_dir)
    run = stage_cli.start("rollin", params, run_dir)
    try:
        stage_cli.wait_for_shards(output, 1, run)
        actors = [
            p
            for p in psutil.Process(run.pid).children(recursive=True)
            if "_StageWorker" in " ".join(p.cmdline())
        ]
        assert actors, "no actor process found"
        actors[0].send_signal(signal.SIGKILL)
    except BaseException:
        stage_cli.kill_tree(run)
        raise
    log = stage_cli.finish(run)
    assert "replacing it" in log  # stage.py's warning: the dead actor's shard was requeued
    assert len(list(output.glob("*.parquet"))) == 12
    _check_same(_table(output), expected)


def test_rollout_on_ray_matches_in_process(tmp_path, tiny_policy, make_problems):
    import ray

    from tracefactory.generation.config import RolloutConfig
    from tracefactory.generation.rollout import run_rollout

    problems = make_problems(tmp_path / "problems", 4)
    params = _params(tmp_path, problems, tiny_policy, use_ray=False)
    run_rollin(params.rollin, params.seed)
    outputs = {}
    for executor in ("local", "ray"):
        rollout = RolloutConfig(
            rollins_dir=params.rollin.output_dir,
            output_dir=str(tmp_path / f"rollouts-{executor}"),
            policy=tiny_policy,
            sampling=SamplingConfig(max_response_tokens=160),
            rollins_per_shard=4,
            workers=WorkerConfig(count=2, num_cpus=1),
        )
        try:
            run_rollout(rollout, params.seed, params.ray if executor == "ray" else None)
        finally:
            ray.shutdown()
        outputs[executor] = pl.from_arrow(TableReader(rollout.output_dir).read()).sort("rollout_id")
    assert outputs["local"].height > 0
    assert outputs["ray"].equals(outputs["local"])
