"""``pip install tracefactory`` outside a checkout: a built wheel in a fresh venv, ``tracefactory
init``, a profile applied, and DVC running the stages there.

The venv reuses this environment's installed dependencies (a ``.pth`` line to its site-packages)
and gets only the wheel itself (``--no-deps``), so the test stays offline and fast. ``dvc repro``
runs every stage there, train and evaluate through the recipes inside the package.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
pytestmark = pytest.mark.integration


def _run(args: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_a_wheel_in_a_fresh_venv_inits_a_project_that_dvc_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(wheels), str(REPO)], tmp_path, env)  # fmt: skip
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    packages = next(venv.glob("lib/python*/site-packages"))
    (packages / "reused.pth").write_text(site.getsitepackages()[0] + "\n")
    wheel = next(wheels.glob("tracefactory-*.whl"))
    _run([str(venv / "bin/python"), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
         tmp_path, env)  # fmt: skip
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    where = _run(
        ["python", "-c", "import tracefactory; print(tracefactory.__file__)"], tmp_path, env
    )
    assert where.startswith(str(packages)), where  # the wheel, not this checkout

    project = tmp_path / "project"
    _run(["tracefactory", "init", str(project)], tmp_path, env)
    assert {"dvc.yaml", "params.yaml", ".git", ".dvc", "pipelines", "plots"} <= {
        p.name for p in project.iterdir()
    }
    _run(["tracefactory", "params", "apply", "smoke"], project, env)
    _run(["dvc", "repro"], project, env)
    assert (project / "data/labels/_manifest.json").is_file()
    assert (project / "models/value_model/model.safetensors").is_file()
    assert (project / "reports/evaluate/summary.json").is_file()
