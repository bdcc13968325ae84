"""The evaluate stage's outputs besides metrics.json: DVC plot data, PNG plots, a markdown table.

Plots per benchmark: accuracy vs budget N and accuracy vs FLOPs per problem (policy + value model),
one line per method family with its 95% bootstrap band; VGS and the random control are points at
their search budgets.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

FAMILIES = ("mv", "wmv", "bon", "vgs", "random")  # pass@1 is drawn as a flat reference


def plot_rows(metrics: dict) -> list[dict]:
    """One record per (benchmark, method, budget): what ``dvc plots`` reads."""
    rows = []
    for benchmark, methods in metrics.items():
        for key, value in methods.items():
            if key == "paired" or "@" not in key:
                continue
            family, budget = key.split("@")
            rows.append(
                {
                    "benchmark": benchmark,
                    "method": family,
                    "budget": 1 if budget == "1" and family == "pass" else int(budget),
                    "accuracy": value["mean"],
                    "ci_low": value["ci_low"],
                    "ci_high": value["ci_high"],
                    "flops": value["flops"],
                }
            )
    return rows


def write_reports(metrics: dict, output_dir: str | Path) -> list[Path]:
    """Write ``plots/accuracy.json``, ``figures/<benchmark>_{budget,flops}.png`` and ``report.md``
    into ``output_dir``; return the paths written. The PNGs have a folder of their own: DVC
    declares it as one output, whatever the benchmarks are called."""
    output_dir = Path(output_dir)
    (output_dir / "plots").mkdir(parents=True, exist_ok=True)
    (output_dir / "figures").mkdir(parents=True, exist_ok=True)
    rows = plot_rows(metrics)
    data_path = output_dir / "plots" / "accuracy.json"
    data_path.write_text(json.dumps(rows, indent=1) + "\n")
    written = [data_path]
    for benchmark in metrics:
        bench_rows = [r for r in rows if r["benchmark"] == benchmark]
        for axis in ("budget", "flops"):
            path = output_dir / "figures" / f"{benchmark}_{axis}.png"
            _plot(bench_rows, axis, f"{benchmark}: accuracy vs {axis}", path)
            written.append(path)
    report = output_dir / "report.md"
    report.write_text(markdown_report(metrics))
    return written + [report]


def _plot(rows: list[dict], axis: str, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(6, 4))
    for family in FAMILIES:
        points = sorted((r for r in rows if r["method"] == family), key=lambda r: r[axis])
        if not points:
            continue
        xs = [p[axis] for p in points]
        ax.plot(xs, [p["accuracy"] for p in points], marker="o", label=family)
        ax.fill_between(
            xs, [p["ci_low"] for p in points], [p["ci_high"] for p in points], alpha=0.2
        )
    for row in rows:
        if row["method"] == "pass":
            ax.axhline(row["accuracy"], color="grey", linestyle="--", label="pass@1")
    ax.set_xscale("log", base=2 if axis == "budget" else 10)
    ax.set_xlabel("budget N" if axis == "budget" else "FLOPs per problem (policy + value)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def markdown_report(metrics: dict) -> str:
    """Per benchmark, a table of every method (accuracy, CIs, compute) and the paired tests."""
    lines = ["# Evaluation: value-guided search vs baselines", ""]
    lines += [
        "Accuracy in %, with the 95% bootstrap CI over problems and the within-problem CI "
        "(resampling the methods' randomness on these problems). FLOPs and tokens are per problem "
        "and run; see `tracefactory.search.compute` for what is counted.",
        "",
    ]
    for benchmark, methods in metrics.items():
        lines += [f"## {benchmark}", ""]
        lines += [
            "| method | accuracy | 95% CI (problems) | 95% CI (within) | gen tokens | "
            "value tokens (full re-encode) | FLOPs |",
            "|---|---|---|---|---|---|---|",
        ]
        for key, m in methods.items():
            if key == "paired":
                continue
            lines.append(
                f"| {key} | {_pct(m['mean'])} | {_pct(m['ci_low'])}–{_pct(m['ci_high'])} | "
                f"{_pct(m['ci_within_low'])}–{_pct(m['ci_within_high'])} | "
                f"{m['gen_tokens']:,.0f} | {m['value_tokens']:,.0f} "
                f"({m['value_tokens_full']:,.0f}) | {m['flops']:.3g} |"
            )
        if methods.get("paired"):
            lines += ["", "| paired difference (points) | mean | 95% CI |", "|---|---|---|"]
            for key, d in methods["paired"].items():
                lines.append(f"| {key} | {_pct(d['mean'])} | {_pct(d['ci_low'])}–"
                             f"{_pct(d['ci_high'])} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines) + "\n"
