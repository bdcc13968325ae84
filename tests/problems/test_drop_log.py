"""The problems stage's drop log under DVC: a JSON document, never an empty file."""

import json
import shutil
import subprocess

import yaml
from locations import PACKAGE, REPO, command_env

from tracefactory.summaries import side_output_document


def test_a_run_that_drops_nothing_under_dvc_leaves_an_empty_array_and_no_warning(tmp_path):
    """DVC warns "'<out>' is empty" for an empty output on every run; a drop log with no rows
    is the common case, so it is written as ``[]``."""
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy(REPO / "dvc.yaml", work)
    shutil.copytree(REPO / "schemas", work / "schemas")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(PACKAGE, work / "src" / "tracefactory", ignore=ignore)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["problems"]["sources"][0]["counts"] = {"train": 12, "test": 3}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = command_env(DVC_NO_ANALYTICS="1")
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(command, cwd=work, env=env, check=True, timeout=120)
    repro = subprocess.run(
        ["dvc", "repro", "problems"], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert repro.returncode == 0, repro.stdout + repro.stderr
    metrics = json.loads((work / "reports/problems/metrics.json").read_text())
    assert sum(metrics["dropped"].values()) == 0  # the case this test is about
    assert (work / "reports/problems/dropped.json").read_bytes() == b"[]\n"
    assert "is empty" not in repro.stdout + repro.stderr


def test_dropped_rows_read_back_one_per_line():
    lines = b'{"row":1,"reason":"duplicate"}\n{"row":4,"reason":"link"}\n'
    document = side_output_document(lines)
    assert json.loads(document) == [{"row": 1, "reason": "duplicate"}, {"row": 4, "reason": "link"}]
    assert document.splitlines()[1:-1] == [b'{"row":1,"reason":"duplicate"},', lines.split()[1]]
