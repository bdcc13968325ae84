"""The command line as a user meets it: one grammar, and expected failures as one clear line."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from locations import REPO

from tracefactory import __version__


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tracefactory.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_version():
    result = _cli("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"tracefactory {__version__}")


def test_a_missing_params_file_is_one_line_and_debug_adds_the_traceback(tmp_path):
    result = _cli("label", "--params", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "nope.yaml does not exist" in _one_error_line(result)
    debug = _cli("--debug", "label", "--params", str(tmp_path / "nope.yaml"))
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_a_bad_value_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    result = _cli("rollin", "--set", "rollin.sampling.temperature=.inf", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "rollin.sampling.temperature = inf: Input should be a finite number" in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_missing_input_table_is_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    line = _one_error_line(_cli("label", cwd=tmp_path))
    assert "data/" in line


def test_ctrl_c_stops_with_one_line_and_exit_130(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["problems"]["sources"][0]["counts"] = {"train": 400_000}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    process = subprocess.Popen(
        [sys.executable, "-m", "tracefactory.cli", "problems"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    for line in process.stderr:  # the stage is working once it has planned its shards
        if "shards planned" in line:
            break
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=120) == 130
    assert "Traceback" not in rest
    assert "error: interrupted" in rest


def test_params_show_prints_each_key_with_value_default_and_meaning():
    lines = _cli("params", "show", "--set", "rollin.samples_per_problem=8").stdout.splitlines()
    at = lines.index("rollin.samples_per_problem = 8  (default 4)")
    assert lines[at + 1].strip() == "k; the paper: 14"
    assert "seed = 1234" in lines


def test_the_dataset_stage_and_its_command_share_a_name_and_every_stage_takes_reports():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        assert stage["cmd"].split()[:2] == ["tracefactory", name], stage["cmd"]
        text = _cli(name, "--help").stdout
        assert "--set" in text and f"{name}." in text.split("--set", 1)[1]
        if name != "publish":
            assert "--reports" in text
    assert _cli("export", "--help").returncode != 0


def test_a_resumed_stage_records_the_same_reports_and_keeps_its_drop_log(tmp_path):
    """Tracked reports depend on the table only: a rerun that skips the finished shard writes the
    same metrics, summary and drop log (even one deleted meanwhile); what was skipped is logged."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["problems"]["sources"] = [
        {"name": "synthetic", "type": "synthetic", "counts": {"train": 12, "test": 3}}
    ]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    reports = tmp_path / "reports" / "problems"
    assert _cli("problems", cwd=tmp_path).returncode == 0
    first = {name: (reports / name).read_bytes() for name in ("metrics.json", "summary.json")}
    dropped = (reports / "dropped.json").read_bytes()
    assert b"shards_skipped" not in first["metrics.json"]
    (reports / "dropped.json").unlink()
    rerun = _cli("problems", cwd=tmp_path)
    assert rerun.returncode == 0 and "1 already complete" in rerun.stderr
    assert {name: (reports / name).read_bytes() for name in first} == first
    assert (reports / "dropped.json").read_bytes() == dropped


def test_the_recipes_run_outside_a_checkout(tmp_path):
    """`tracefactory train` runs the packaged recipe from any folder: here it gets as far as the
    recipe's own check of the dataset."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"dataset": "/nowhere"}}))
    line = _one_error_line(_cli("train", cwd=tmp_path))
    assert "/nowhere" in line and "neither a dataset folder nor a Hub id" in line
