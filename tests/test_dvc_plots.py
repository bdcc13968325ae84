"""Every plot ``dvc.yaml`` declares renders in ``dvc plots show``, with no warning.

DVC drops a plot it cannot draw with only a warning (the training loss did, while rows of
``curve.json`` differed in their keys), so the test renders all of them in a small repository:
this checkout's ``dvc.yaml`` and templates, a training curve written as the trainer writes it,
and the calibration, accuracy and figure files of the reference run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tracefactory.valuemodel.metrics import curve_rows

REPO = Path(__file__).parents[1]


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(
        args, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=True
    )


def test_every_declared_plot_renders_without_a_warning(tmp_path):
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copytree(REPO / "plots", tmp_path / "plots")
    curve = [{"step": s, "train_loss": 1.0 / s} for s in (10, 20, 30)]
    curve[-1] |= {"val_loss": 0.5, "val_brier": 0.2, "val_pairwise_accuracy": 0.6}
    train = tmp_path / "reports" / "train"
    train.mkdir(parents=True)
    (train / "curve.json").write_text(json.dumps(curve_rows(curve)))
    shutil.copy(REPO / "reports/train/calibration.json", train / "calibration.json")
    evaluate = tmp_path / "reports" / "evaluate"
    shutil.copytree(REPO / "reports/evaluate/plots", evaluate / "plots")
    shutil.copytree(REPO / "reports/evaluate/figures", evaluate / "figures")
    _run(tmp_path, "git", "init", "-q")
    _run(tmp_path, "dvc", "init", "-q")

    shown = _run(tmp_path, "dvc", "plots", "show", "--json")

    assert "WARNING" not in shown.stderr + shown.stdout.split("{", 1)[0], shown.stderr
    rendered = json.loads(shown.stdout[shown.stdout.index("{") :])
    assert "errors" not in rendered, rendered["errors"]
    declared = [next(iter(p)) if isinstance(p, dict) else p for p in _declared_plots()]
    for name in declared:
        drawn = [key for key, views in rendered["data"].items() if key.startswith(name) and views]
        assert drawn, f"plot {name!r} was not drawn"
    loss = rendered["data"]["Value-model training loss"][0]["content"]["data"]["values"]
    assert {row["field"] for row in loss} == {"train_loss", "val_loss"}


def _declared_plots() -> list:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
