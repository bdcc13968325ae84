"""Every usage mistake ends in at most three lines on stderr, no traceback and a non-zero exit,
with a "did you mean" wherever there is a near candidate, and the source of a bad value named.

The command runs through ``tracefactory.cli.main``, the console script's entry point, in this
process (an import of the CLI takes seconds); one test runs the installed script itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracefactory.cli import main

REPO = Path(__file__).parents[1]


def _run(capsys, monkeypatch, cwd: Path, *args: str) -> tuple[int, str]:
    """Exit code and stderr of ``tracefactory *args`` run from ``cwd``."""
    code, _, err = _run_out(capsys, monkeypatch, cwd, *args)
    return code, err


def _run_out(capsys, monkeypatch, cwd: Path, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``tracefactory *args`` run from ``cwd``."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["tracefactory", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def _short_error(code: int, err: str) -> str:
    """The error line of a usage mistake, after checking its shape."""
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 3, err
    assert lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    return tmp_path


def test_a_misspelt_command_suggests_the_command(capsys, monkeypatch, project):
    line = _short_error(*_run(capsys, monkeypatch, project, "rollot"))
    assert "'rollot'" in line and "Did you mean 'rollout'" in line


def test_a_misspelt_option_suggests_the_option(capsys, monkeypatch, project):
    line = _short_error(*_run(capsys, monkeypatch, project, "rollin", "--sett", "x=1"))
    assert line == "error: No such option: --sett; did you mean --set?"


def test_a_bad_choice_lists_the_choices(capsys, monkeypatch, project):
    line = _short_error(*_run(capsys, monkeypatch, project, "grade", "--thinking", "r2"))
    assert "'--thinking'" in line and "'r2' is not one of" in line and "'r1'" in line


def test_a_missing_argument_is_named(capsys, monkeypatch, project):
    line = _short_error(*_run(capsys, monkeypatch, project, "params", "apply"))
    assert line == "error: Missing argument 'profile'."


def test_a_misspelt_key_from_set_names_the_set_and_the_key_meant(capsys, monkeypatch, project):
    args = ("rollin", "--set", "rollin.sampels_per_problem=3")
    code, err = _run(capsys, monkeypatch, project, *args)
    assert _short_error(code, err) == (
        "error: --set rollin.sampels_per_problem=3: unknown key rollin.sampels_per_problem; "
        "did you mean rollin.samples_per_problem?"
    )
    assert not (project / "data").exists()


def test_a_key_in_the_wrong_section_suggests_where_it_lives(capsys, monkeypatch, project):
    code, err = _run(capsys, monkeypatch, project, "rollin", "--set", "rollin.cuts_per_rollin=2")
    assert _short_error(code, err).endswith("did you mean rollout.cuts_per_rollin?")


def test_a_misspelt_key_in_a_file_names_that_file(capsys, monkeypatch, project):
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("samples_per_problem:", "samples_per_problm:", 1))
    line = _short_error(*_run(capsys, monkeypatch, project, "params", "show"))
    assert line.startswith("error: params.yaml: unknown key rollin.samples_per_problm;")
    assert line.endswith("did you mean rollin.samples_per_problem?")


def test_a_misspelt_key_in_a_profile_names_the_profile(capsys, monkeypatch, project):
    (project / "mine.yaml").write_text("rollout:\n  samples_per_cutt: 2\n")
    before = (project / "params.yaml").read_text()
    line = _short_error(*_run(capsys, monkeypatch, project, "params", "apply", "mine.yaml"))
    assert line.startswith("error: mine.yaml: unknown key rollout.samples_per_cutt;")
    assert (project / "params.yaml").read_text() == before


def test_a_key_nothing_resembles_points_to_params_show(capsys, monkeypatch, project):
    line = _short_error(*_run(capsys, monkeypatch, project, "params", "show", "--set", "label.x=1"))
    assert line.endswith("`tracefactory params show label` lists the keys")


def test_a_list_item_is_set_by_index(capsys, monkeypatch, project):
    args = ("params", "show", "rollin", "--json", "--set", "rollin.policies[0].batch_size=8")
    code, _ = _run(capsys, monkeypatch, project, *args)
    assert code == 0
    args = ("rollin", "--set", "rollin.policies[0].bach_size=8")
    code, err = _run(capsys, monkeypatch, project, *args)
    assert _short_error(code, err).endswith("did you mean rollin.policies[0].batch_size?")
    code, err = _run(capsys, monkeypatch, project, "rollin", "--set", "rollin.policies[5].x=8")
    assert _short_error(code, err) == "error: --set rollin.policies[5]: the list has 1 item(s)"


def test_params_show_a_section_and_refuse_an_unknown_one(capsys, monkeypatch, project):
    code, out, _ = _run_out(capsys, monkeypatch, project, "params", "show", "rollin.sampling")
    keys = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert code == 0
    assert keys == [f"rollin.sampling.{k}" for k in ("temperature", "top_p", "max_response_tokens",
                                                     "stop_token_ids")]  # fmt: skip
    line = _short_error(*_run(capsys, monkeypatch, project, "params", "show", "rolin"))
    assert line == "error: params have no section or key 'rolin'; did you mean rollin?"


def test_help_names_only_subcommands_that_exist(capsys, monkeypatch, project):
    code, out, _ = _run_out(capsys, monkeypatch, project, "params", "--help")
    assert code == 0 and "show" in out and "apply" in out
    assert "check" not in out


def test_the_installed_command_prints_the_short_error(project):
    script = Path(sys.executable).parent / "tracefactory"
    result = subprocess.run(
        [str(script), "rollot"], cwd=project, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: No such command 'rollot'. Did you mean 'rollout', 'rollin'?",
        "(see: tracefactory --help)",
    ]
