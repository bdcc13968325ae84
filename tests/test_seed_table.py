"""The seed table is read from real DVC experiments (``dvc exp run --queue`` / ``--run-all`` /
``dvc exp show --json``) of a stand-in pipeline whose one stage writes the train and evaluate
summaries from the run seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracefactory import seed_table

SEEDS = "reports/seeds.json"  # the runs behind the README's table, as recorded

STAGE = """
import json, os, sys, yaml
params = yaml.safe_load(open("params.yaml"))
seed = params["seed"]
os.makedirs("reports/train", exist_ok=True)
os.makedirs("reports/evaluate", exist_ok=True)
json.dump({"auroc": 0.9 + seed / 1000, "brier": 0.1, "pairwise": 60.0 + seed},
          open("reports/train/summary.json", "w"))
diff = lambda mean: {"mean": mean, "ci_low": mean - 3.0, "ci_high": mean + 3.0}
json.dump({"synthetic_test": {"vgs": 60.0 + seed, "vgs-mv": diff(seed), "vgs-random": diff(2.0),
           "vgs-wmv": diff(-1.0)}}, open("reports/evaluate/summary.json", "w"))
"""

DVC_YAML = """stages:
  run:
    cmd: python stage.py
    params: [seed, train]
    metrics:
      - reports/train/summary.json:
          cache: false
      - reports/evaluate/summary.json:
          cache: false
"""


def _run(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, timeout=240)


@pytest.fixture
def experiments(tmp_path) -> Path:
    """A git + DVC project with a committed run (seed 1) and three queued experiments run (seeds
    1, 2 and 5); the commit's reports are then overwritten by hand, which the table must ignore."""
    _run(["git", "init", "-q"], tmp_path)
    _run(["git", "config", "user.email", "t@example.com"], tmp_path)
    _run(["git", "config", "user.name", "t"], tmp_path)
    _run(["dvc", "init", "-q"], tmp_path)
    (tmp_path / "stage.py").write_text(STAGE)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "params.yaml").write_text("seed: 1\ntrain: {seed: null}\n")
    _run(["dvc", "repro", "-q"], tmp_path)
    _run(["git", "add", "-A"], tmp_path)
    _run(["git", "commit", "-qm", "run"], tmp_path)
    for seed in (1, 2, 5):
        _run(["dvc", "exp", "run", "--queue", "-S", f"seed={seed}"], tmp_path)
    _run(["dvc", "exp", "run", "--run-all"], tmp_path)
    (tmp_path / "reports" / "train" / "summary.json").write_text(
        json.dumps({"auroc": 0.5, "brier": 0.2, "pairwise": 1.0})
    )  # the workspace's reports, of no experiment
    return tmp_path


@pytest.mark.integration
def test_the_table_holds_every_run_seed_with_mean_and_range(experiments, monkeypatch):
    monkeypatch.chdir(experiments)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    readme = experiments / "README.md"
    readme.write_text(f"# results\n\n{seed_table.BEGIN}\nold\n{seed_table.END}\n\nafter\n")
    seed_table.main([str(readme), "--record", "seeds.json"])
    text = readme.read_text()
    assert "old" not in text and text.endswith("after\n")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert [r.split(" | ")[0] for r in rows[1:4]] == ["| 1", "| 2", "| 5"]
    assert "+2.0 (-1.0 to +5.0)" in rows[2]  # run seed 2's VGS - MV with its CI
    assert rows[4].startswith("| mean of 3 |") and "62.7" in rows[4]  # mean pair ordering
    assert rows[5].startswith("| range |") and "61.0 to 65.0" in rows[5]
    # VGS - MV: only seed 5 (-3 + 5 > 0); VGS - random: none (2 - 3 < 0)
    assert "CI above zero in 1 of 3 runs for VGS − MV, 0 of 3 runs for VGS − random" in text
    recorded = json.loads((experiments / "seeds.json").read_text())
    assert [(r["seed"], r["train_seed"]) for r in recorded] == [(1, 1), (2, 2), (5, 5)]

    readme.write_text(f"{seed_table.BEGIN}\n{seed_table.END}\n")
    seed_table.main([str(readme), "--from", "seeds.json"])  # the same table without DVC
    assert readme.read_text().strip() == text.split("# results\n\n")[1].split("\n\nafter")[0]


def test_a_readme_without_the_markers_is_one_clear_error(tmp_path):
    from tracefactory.errors import ConfigError

    readme = tmp_path / "README.md"
    readme.write_text("# nothing marked\n")
    with pytest.raises(ConfigError, match="add both lines"):
        seed_table.update_readme(readme, "block")


def test_runs_without_both_summaries_are_left_out():
    unfinished = {"name": "queued", "data": {"params": {"params.yaml": {"data": {"seed": 3}}},
                                            "metrics": {}}}  # fmt: skip
    assert seed_table.runs_from_exp_show([unfinished], "synthetic_test") == []


def test_the_readme_seed_table_is_the_one_generated_from_the_recorded_runs():
    """The committed README's block is exactly what the committed reports/seeds.json gives:
    never typed by hand, never stale."""
    from locations import REPO

    runs = [seed_table.SeedRun(**row) for row in json.loads((REPO / SEEDS).read_text())]
    readme = (REPO / "README.md").read_text()
    assert seed_table.table_block(runs, "synthetic_test") in readme
    assert len(runs) >= 3, "the seed table needs at least 3 run seeds"
