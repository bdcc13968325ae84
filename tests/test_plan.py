"""The planner: its predictions for the simulated profile against what the run then writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracefactory.config import deep_merge, read_yaml
from tracefactory.dataset.export import export_dataset
from tracefactory.errors import ConfigError
from tracefactory.generation.rollin import run_rollin
from tracefactory.generation.rollout import run_rollout
from tracefactory.grading.stage import VerifyStage
from tracefactory.io import TableReader
from tracefactory.labels.stage import LabelStage
from tracefactory.params import Params
from tracefactory.plan import make_plan, run_plan
from tracefactory.problems.stage import ProblemsStage
from tracefactory.stage import run_stage

REPO = Path(__file__).resolve().parents[1]


def _simulated_params(train: int) -> Params:
    data = deep_merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "pipelines/scale-sim.yaml"))
    data["problems"]["sources"][0]["counts"] = {"train": train, "val": 2, "test": 2}
    data["label"]["val_problems"] = 2
    for section in ("rollin", "rollout", "verify"):
        data[section]["use_ray"] = False
    return Params.model_validate(data)


def _disk(folder: str) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*.parquet"))


@pytest.mark.integration
def test_plan_of_the_simulated_profile_is_within_20_percent_of_its_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = _simulated_params(train=24)
    run_stage(ProblemsStage(params.problems, params.seed), params.problems.output_dir)
    plan = make_plan(params)  # before any trace exists
    run_rollin(params.rollin, params.seed)
    run_rollout(params.rollout, params.seed)
    run_stage(VerifyStage(params.verify), params.verify.output_dir)
    labels = run_stage(LabelStage(params.label), params.label.output_dir)
    export_dataset(params.dataset, params)

    for table, folder in (
        ("rollins", params.rollin.output_dir),
        ("rollouts", params.rollout.output_dir),
        ("labels", params.label.output_dir),
    ):
        reader = TableReader(folder)
        measured = reader.manifest.rows
        predicted = plan.tables[table]
        assert predicted["rows"] == pytest.approx(measured, rel=0.2), table
        assert predicted["disk_bytes"] == pytest.approx(_disk(folder), rel=0.2), table
    rollins = TableReader(params.rollin.output_dir).manifest.counts["tokens"]
    rollouts = TableReader(params.rollout.output_dir).manifest.counts["tokens"]
    assert plan.tables["rollins"]["tokens"] == pytest.approx(rollins, rel=0.2)
    assert plan.tables["rollouts"]["tokens"] == pytest.approx(rollouts, rel=0.2)
    assert plan.tables["labels"]["tokens"] == pytest.approx(labels.stats["tokens"], rel=0.2)
    dataset = _disk(params.dataset.output_dir)
    assert plan.tables["dataset"]["disk_bytes"] == pytest.approx(dataset, rel=0.2)


def test_paper_profile_plan_prints_and_writes_gpu_hours(tmp_path, capsys):
    plan = run_plan(
        REPO / "params.yaml",
        REPO / "pipelines/paper.yaml",
        gpu="h100",
        nodes=4,
        gpus_per_node=8,
        throughput_file=None,
        pilot=None,
        reports=tmp_path,
        train_problems=48_394,
    )
    written = json.loads((tmp_path / "plan.json").read_text())
    assert written["gpu_hours"] == pytest.approx(plan.gpu_hours)
    assert plan.rollins == 48_394 * 14 and plan.rollouts <= plan.rollins * 4
    # Generation of the paper's run: the 1,000-2,000 H100-hours from published throughput.
    generation = plan.stage_gpu_hours["rollin"] + plan.stage_gpu_hours["rollout"]
    assert 1000 < generation < 2000
    assert plan.wall_hours == pytest.approx(plan.gpu_hours / 32)
    assert "GPU-hours" in capsys.readouterr().out


def test_a_hub_source_without_a_count_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="--problems"):
        run_plan(
            REPO / "params.yaml",
            REPO / "pipelines/paper.yaml",
            "h100",
            1,
            8,
            None,
            None,
            tmp_path,
        )


def test_a_throughput_file_overrides_a_figure_and_an_unknown_gpu_is_an_error(tmp_path):
    override = tmp_path / "throughput.json"
    override.write_text(json.dumps({"h100": {"7": [1000.0, "our own vLLM run"]}}))
    plan = run_plan(
        REPO / "params.yaml",
        REPO / "pipelines/paper.yaml",
        "h100",
        1,
        8,
        override,
        None,
        tmp_path,
        train_problems=1000,
    )
    seven = plan.policies["rollin"]["r1-distill-7b"]
    assert seven.throughput_source == "our own vLLM run"
    with pytest.raises(ConfigError, match="no h200 throughput|no throughput for GPU 'h200'"):
        run_plan(
            REPO / "params.yaml",
            REPO / "pipelines/paper.yaml",
            "h200",
            1,
            8,
            None,
            None,
            tmp_path,
            train_problems=1000,
        )


@pytest.mark.integration
def test_pilot_measures_lengths_on_n_problems(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = _simulated_params(train=6)
    run_stage(ProblemsStage(params.problems, params.seed), params.problems.output_dir)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(json.dumps(params.model_dump(mode="json")))
    plan = run_plan(params_file, None, "h100", 1, 8, None, 3, tmp_path / "plan")
    pilot = TableReader(tmp_path / "plan" / "pilot-rollins")
    assert pilot.manifest.rows == 3 * 14
    assert "pilot measurement" in plan.assumptions[0]
    assert plan.rollins == 6 * 14  # the plan is of the whole run, the pilot only measured
