"""The whole pipeline under DVC, on a miniature config: every stage, wired as dvc.yaml says."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from locations import REPO, command_env

STAGES = [
    "problems",
    "rollin",
    "rollout",
    "verify",
    "label",
    "dataset",
    "publish",
    "train",
    "evaluate",
]

MINIATURE = {
    "problems": {
        "sources": [
            {"name": "synthetic", "type": "synthetic", "counts": {"train": 24, "val": 4, "test": 8}}
        ]
    },
    "rollin": {
        "samples_per_problem": 2,
        "problems_per_shard": 12,
        "workers": {"count": 1, "num_cpus": 1},
    },
    "rollout": {
        "cuts_per_rollin": 2,
        "rollins_per_shard": 16,
        "workers": {"count": 1, "num_cpus": 1},
    },
    "verify": {"workers": {"count": 1, "num_cpus": 1}},
    "label": {"val_fraction": 0.25},
    "train": {
        "max_steps": 6,
        "warmup_steps": 2,
        "batch_size": 8,
        "eval_every": 3,
        "checkpoint_every": 3,
    },
    "evaluate": {
        "max_problems": 6,
        "budgets": [2, 4],
        "independent_samples": 8,
        "search_budgets": [4],
    },
}


def _run(args: list[str], cwd: Path, timeout_s: float = 300) -> subprocess.CompletedProcess:
    """Run a command; a timeout fails the test with the command named, under pytest's own limit
    (900 s, or the test's ``timeout`` mark) so the failure is this one, not pytest killing it."""
    result = subprocess.run(
        args, cwd=cwd, env=command_env(), capture_output=True, text=True, timeout=timeout_s
    )
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return result


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) \S+: ")


def _assert_log_is_clean(log: str) -> None:
    """No deprecation warnings, no terminal escapes, and one timestamped format for our lines."""
    lines = log.splitlines()
    assert "\x1b[" not in log, "raw ANSI escape in the log"
    ours = [line for line in lines if re.search(r"\b(tracefactory|train_value_model)[.:]", line)]
    assert ours, "no log line from the stages"
    unprefixed = [re.sub(r"^\(\w+ pid=\d+\) ", "", line) for line in ours]  # Ray's worker prefix
    unformatted = [line for line in unprefixed if not LOG_LINE.match(line)]
    assert not unformatted, "\n".join(unformatted[:10])
    warned = [line for line in lines if re.search(r"FutureWarning|DeprecationWarning", line)]
    assert not warned, "\n".join(warned[:10])


def test_cli_lists_every_stage():
    result = _run(["tracefactory", "--help"], REPO)
    for stage in [
        "problems",
        "rollin",
        "rollout",
        "verify",
        "label",
        "dataset",
        "publish",
        "train",
        "evaluate",
        "grade",
        "params",
    ]:
        assert stage in result.stdout


def test_dvc_dag_shows_every_stage():
    result = _run(["dvc", "dag", "--md"], REPO)
    for stage in STAGES:
        assert stage in result.stdout


@pytest.mark.integration
@pytest.mark.timeout(1800)  # the whole pipeline: more than the suite's 900 s per test
def test_dvc_repro_runs_every_stage_on_a_miniature_config(tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    for folder in ["schemas", "train", "src", "plots"]:
        shutil.copytree(REPO / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", work)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in MINIATURE.items():
        params[section] = {**params.get(section, {}), **values}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], work)
    _run(["dvc", "init", "-q"], work)
    repro = _run(["dvc", "repro"], work, timeout_s=1500)

    lock = yaml.safe_load((work / "dvc.lock").read_text())
    assert set(lock["stages"]) == set(STAGES)
    problems = json.loads((work / "reports/problems/metrics.json").read_text())
    assert problems  # the report exists and says something
    labels = json.loads((work / "reports/label/metrics.json").read_text())
    assert labels["rows"] > 0
    train = json.loads((work / "reports/train/metrics.json").read_text())
    assert "brier" in train["val"]
    evaluation = json.loads((work / "reports/evaluate/metrics.json").read_text())
    methods = evaluation["synthetic_test"]
    for method in ["pass@1", "mv@4", "wmv@4", "bon@4", "vgs@4", "random@4"]:
        assert 0.0 <= methods[method]["mean"] <= 1.0, method
    assert "vgs@4-mv@4" in methods["paired"]
    assert (work / "data/dataset/README.md").is_file()
    # The card's provenance cites this run's input tables, exactly as dvc.lock records them.
    provenance = (work / "data/dataset/PROVENANCE.md").read_text()
    for dep in lock["stages"]["dataset"]["deps"]:
        if dep["path"].startswith("data/"):
            assert f"| `{dep['path']}` | `{dep['md5']}` |" in provenance, dep
    summaries = [json.loads((work / f"reports/{s}/summary.json").read_text()) for s in STAGES[:-3]]
    assert all(summaries)
    # Nothing left to do: a second repro changes nothing.
    status = _run(["dvc", "status"], work)
    assert "changed" not in status.stdout
    # A stage rerun by hand skips its finished shards and records the same tracked files.
    rerun = _run(["tracefactory", "label"], work)
    assert "already complete" in rerun.stderr
    status = _run(["dvc", "status"], work)
    assert "changed" not in status.stdout, status.stdout
    _assert_log_is_clean(repro.stdout + repro.stderr)
