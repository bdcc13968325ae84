"""The few lines printed when a run's evaluation finishes: what was built and what it showed.

Rows of each stage, the labels' class balance, the value model's validation metrics, and the
headline accuracies and paired differences with their 95% CIs, in percent, read from the reports
and tables the run just wrote (a report a stage has not written is left out).
"""

from __future__ import annotations

import json
from pathlib import Path

from tracefactory.errors import StageInputError
from tracefactory.io import TableReader
from tracefactory.params import Params
from tracefactory.schemas import TrajectoryClass
from tracefactory.summaries import EVALUATE_METHODS, SUMMARY_NAME, evaluate_summary

DATA_STAGES = ("problems", "rollin", "rollout", "verify", "label", "dataset")


def render_run_summary(params: Params, reports: Path = Path("reports")) -> str:
    """The end-of-run summary of the run ``params`` describe, as plain text lines."""
    lines = ["run summary"]
    rows = {s: _read(reports / s / SUMMARY_NAME).get("rows") for s in DATA_STAGES}
    shown = [f"{stage} {count:,}" for stage, count in rows.items() if count is not None]
    if shown:
        lines.append("  rows: " + ", ".join(shown))
    balance = _class_balance(Path(params.label.output_dir))
    if balance:
        lines.append("  labels: " + balance)
    val = _read(Path(params.train.reports_dir) / "metrics.json").get("val")
    if val:
        lines.append(
            f"  value model (validation): Brier {val['brier']:.4f}, AUROC {val['auroc']:.4f}, "
            f"within-problem pairwise accuracy {100 * val['pairwise_accuracy']:.1f}%"
        )
    detail = _read(Path(params.evaluate.output_dir) / "metrics.json")
    for benchmark, summary in evaluate_summary(detail).items():
        methods = detail[benchmark]
        accuracies = []
        for method in EVALUATE_METHODS:
            name = _largest(methods, method)
            if name is not None:
                result = methods[name]
                accuracies.append(
                    f"{name} {100 * result['mean']:.1f} "
                    f"[{100 * result['ci_low']:.1f}, {100 * result['ci_high']:.1f}]"
                )
        lines.append(f"  {benchmark} accuracy % [95% CI]: " + ", ".join(accuracies))
        for pair, diff in summary.items():
            if isinstance(diff, dict):
                lines.append(
                    f"    {pair}: {diff['mean']:+.1f} points [{diff['ci_low']:+.1f}, "
                    f"{diff['ci_high']:+.1f}]"
                )
    return "\n".join(lines)


def _largest(methods: dict, method: str) -> str | None:
    """The name of ``method`` at the largest budget it was run at (``pass@1`` for pass)."""
    if method == "pass":
        return "pass@1" if "pass@1" in methods else None
    budgets = [int(n.split("@")[1]) for n in methods if n.startswith(f"{method}@")]
    return f"{method}@{max(budgets)}" if budgets else None


def _class_balance(labels: Path) -> str:
    try:
        reader = TableReader(labels)
    except StageInputError:  # no finished labels table here: nothing to count
        return ""
    counts = reader.scan().group_by("label").len().collect()
    total = int(counts["len"].sum()) or 1
    by_label = dict(zip(counts["label"].to_list(), counts["len"].to_list(), strict=True))
    return ", ".join(
        f"{label.name.lower()} {100 * by_label.get(int(label), 0) / total:.1f}%"
        for label in TrajectoryClass
    )


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}
