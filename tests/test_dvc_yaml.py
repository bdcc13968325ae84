"""dvc.yaml read as DVC reads it: plots drawn right, metrics that fit a terminal, complete deps."""

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from locations import REPO, command_env

from tracefactory.stages import SUMMARIES
from tracefactory.summaries import evaluate_summary

PACKAGE = REPO / "src" / "tracefactory"
METHODS = ["pass", "mv", "wmv", "bon", "vgs", "random"]
PLOT_TITLES = {
    "training": "Value-model training loss",
    "calibration": "Value-model calibration (validation split)",
    "accuracy": "Accuracy against the sample budget",
}


def _dvc(args: list[str], cwd: Path) -> str:
    result = subprocess.run(
        ["dvc", *args], cwd=cwd, env=command_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"dvc {args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def _dvc_repo(tmp_path: Path) -> Path:
    """A throwaway git + DVC repository holding this dvc.yaml and its plot templates."""
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy(REPO / "dvc.yaml", work)
    shutil.copytree(REPO / "plots", work / "plots")
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    _dvc(["init", "-q"], work)
    return work


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _plot_data(work: Path) -> None:
    """Plot data shaped as the train and evaluate stages write it: two benchmarks, six methods."""
    rows = [
        {"benchmark": b, "method": m, "budget": n, "accuracy": 0.5 + 0.01 * i + 0.001 * n}
        for b in ["bench_a", "bench_b"]
        for i, m in enumerate(METHODS)
        for n in ([1] if m == "pass" else [4, 16] if m in ("vgs", "random") else [4, 8, 16])
    ]
    _write(work / "reports/evaluate/plots/accuracy.json", rows)
    curve = [{"step": s, "train_loss": 1 / s, "val_loss": 2 / s} for s in range(10, 110, 10)]
    _write(work / "reports/train/curve.json", curve)
    calibration = [
        {"points": p, "mean_prediction": x / 10, "observed_rate": x / 10 + d, "count": 5}
        for p, d in [("all_positions", 0.01), ("last_token", -0.02)]
        for x in range(1, 10)
    ]
    _write(work / "reports/train/calibration.json", calibration)


def _lines_drawn(spec: dict) -> dict[str, int]:
    """Line marks in the rendered picture, per layer: one SVG path per drawn series."""
    import vl_convert

    svg = vl_convert.vegalite_to_svg(spec)
    layers = re.findall(r'<g class="mark-line role-mark ([^"]*)"[^>]*>(.*?)</g>', svg, re.S)
    counts: dict[str, int] = {}
    for layer, paths in layers:
        counts[layer] = counts.get(layer, 0) + paths.count("<path")
    return counts


def test_dvc_plots_show_draws_one_line_per_method_and_series(tmp_path):
    pytest.importorskip("vl_convert", reason="the dev extra installs vl-convert-python")
    import vl_convert

    work = _dvc_repo(tmp_path)
    _plot_data(work)
    plots = json.loads(_dvc(["plots", "show", "--json"], work))["data"]
    vega = {name: items for name, items in plots.items() if items and items[0]["type"] == "vega"}
    assert sorted(vega) == sorted(PLOT_TITLES.values()), "each plot declared once, by its title"
    assert all(len(items) == 1 for items in vega.values())
    specs = {key: vega[title][0]["content"] for key, title in PLOT_TITLES.items()}
    for spec in specs.values():
        assert vl_convert.vegalite_to_png(spec)[:8] == b"\x89PNG\r\n\x1a\n"
    # Accuracy: one line per method and benchmark. Calibration: one per set of positions, plus
    # the diagonal. Training curve (DVC's linear template: a smoothed and a raw layer): 2 each.
    assert list(_lines_drawn(specs["accuracy"]).values()) == [len(METHODS) * 2]
    assert sorted(_lines_drawn(specs["calibration"]).values()) == [1, 2]
    assert set(_lines_drawn(specs["training"]).values()) == {2}


def test_dvc_metrics_show_of_the_reference_run_fits_a_terminal(tmp_path):
    work = _dvc_repo(tmp_path)
    for stage, summarize in SUMMARIES.items():
        detail = json.loads((REPO / "reports" / stage / "metrics.json").read_text())
        _write(work / "reports" / stage / "summary.json", summarize(detail))
    shown = _dvc(["metrics", "show"], work).splitlines()
    assert len(shown) == 1 + len(SUMMARIES)
    # A wide terminal: the evaluate summary's paired differences with their CIs (nine columns
    # named benchmark.pair.bound: VGS against MV, random and WMV) are what lets `dvc exp show`
    # tell a gain from noise.
    assert max(len(line) for line in shown) <= 500, "\n".join(shown)


def test_evaluate_summary_names_do_not_depend_on_the_budgets():
    def detail(budgets: list[int]) -> dict:
        methods = {f"{m}@{n}": {"mean": 0.5} for m in ["mv", "vgs", "random"] for n in budgets}
        return {"bench": {"pass@1": {"mean": 0.4}, **methods, "paired": {}}}

    small, large = evaluate_summary(detail([4, 8])), evaluate_summary(detail([16, 64]))
    assert small == large == {"bench": {"pass": 40.0, "mv": 50.0, "vgs": 50.0, "random": 50.0}}


def test_evaluate_summary_holds_the_headline_paired_differences_in_points():
    def diff(mean: float) -> dict:
        return {"mean": mean, "ci_low": mean - 0.05, "ci_high": mean + 0.05}

    paired = {"vgs@4-mv@4": diff(0.01), "vgs@16-mv@16": diff(0.05), "vgs@16-random@16": diff(0.03),
              "vgs@16-wmv@16": diff(-0.01), "wmv@16-mv@16": diff(0.02)}  # fmt: skip
    summary = evaluate_summary({"bench": {"vgs@16": {"mean": 0.6}, "paired": paired}})["bench"]
    assert summary["vgs-mv"] == {"mean": 5.0, "ci_low": 0.0, "ci_high": 10.0}
    assert summary["vgs-random"] == {"mean": 3.0, "ci_low": -2.0, "ci_high": 8.0}
    assert summary["vgs-wmv"] == {"mean": -1.0, "ci_low": -6.0, "ci_high": 4.0}
    assert "wmv-mv" not in summary and summary["vgs"] == 60.0


def test_summaries_name_counters_without_enum_reprs():
    stats = {"reason_match": 3, "traces": 4}
    assert SUMMARIES["verify"]({"rows": 4, "stats": stats}) == {"rows": 4, "match_rate": 75.0}


def _imports(path: Path, top_level_only: bool) -> set[Path]:
    """Files of the tracefactory modules ``path`` imports (inside functions too, unless told)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body if top_level_only else ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.split(".")[0] != "tracefactory":
                continue
            target = PACKAGE.joinpath(*name.split(".")[1:])
            for candidate in (target / "__init__.py", target.with_suffix(".py")):
                if candidate.is_file():
                    found.add(candidate)
    return found


def _runs(entry_modules: list[Path]) -> set[Path]:
    """Every source file importing the CLI and ``entry_modules`` executes (packages' inits too)."""
    seen: set[Path] = set()
    todo = [PACKAGE / "cli.py", *entry_modules]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += [p / "__init__.py" for p in path.parents if (p / "__init__.py").is_file()]
        todo += _imports(path, top_level_only=path == PACKAGE / "cli.py")
    return seen


# What each stage's command imports inside the command function, beside the CLI's own imports.
STAGE_ENTRIES = {
    "problems": ["stages.py", "stage.py"],
    "rollin": ["stages.py", "stage.py"],
    "rollout": ["stages.py", "stage.py"],
    "verify": ["stages.py", "stage.py"],
    "label": ["stages.py", "stage.py"],
    "dataset": ["dataset/export.py"],
    "publish": ["dataset/publish.py", "dataset/export.py"],
    "train": ["recipes/train_value_model.py"],
    "evaluate": ["recipes/evaluate_search.py"],
}


@pytest.mark.parametrize("stage", sorted(STAGE_ENTRIES))
def test_every_source_file_a_stage_runs_is_a_dependency(stage):
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert set(stages) == set(STAGE_ENTRIES)
    deps = [REPO / d for d in stages[stage]["deps"]]
    runs = _runs([(PACKAGE / entry).resolve() for entry in STAGE_ENTRIES[stage]])
    missing = {
        str(path.relative_to(REPO))
        for path in runs
        if not any(path == dep or dep in path.parents for dep in deps)
    }
    assert not missing, f"stage {stage} runs files dvc.yaml does not list: {sorted(missing)}"
