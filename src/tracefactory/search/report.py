"""The evaluate stage's outputs besides metrics.json: DVC plot data, PNG plots, report.md, and the
README's generated headline.

Plots per benchmark, accuracy in percent against budget N and against FLOPs per problem (policy
+ value model): one line per method with its 95% bootstrap band, VGS and the random control at
every search budget, DVTS over its sweep of searches, pass@1 as a band across the plot, and the
legend outside the axes so it never covers data. ``python -m tracefactory.search.report`` rewrites
the marked headline block of a README from ``metrics.json``, so claimed numbers are the run's.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

from tracefactory.errors import ConfigError

logger = logging.getLogger(__name__)

# Method families drawn as lines, with their legend labels.
FAMILIES = {
    "vgs": "VGS (WMV over beams)",
    "vgs_bon": "VGS, BoN over beams",
    "dvts": "DVTS",
    "random": "random control (same search)",
    "wmv": "WMV",
    "mv": "MV",
    "bon": "BoN",
    "pass": "pass@N (oracle)",
    "vgs_pass": "VGS pass@N (oracle)",
}
README_BEGIN = "<!-- evaluate-headline:begin (generated from reports/evaluate/metrics.json) -->"
README_END = "<!-- evaluate-headline:end -->"


def plot_rows(metrics: dict) -> list[dict]:
    """One record per (benchmark, method, budget): what ``dvc plots`` reads (accuracy in %)."""
    rows = []
    for benchmark, methods in metrics.items():
        for key, value in methods.items():
            if key == "paired" or "@" not in key:
                continue
            family, budget = key.split("@")
            rows.append(
                {
                    "benchmark": benchmark,
                    "method": "pass@1" if key == "pass@1" else family,
                    "budget": int(budget),
                    "accuracy": _percent(value["mean"]),
                    "ci_low": _percent(value["ci_low"]),
                    "ci_high": _percent(value["ci_high"]),
                    "flops": value["flops"],
                }
            )
    return rows


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 3)


def write_reports(metrics: dict, output_dir: str | Path, config=None) -> list[Path]:
    """Write ``plots/accuracy.json``, ``figures/<benchmark>_{budget,flops}.png`` and ``report.md``
    (plots embedded, configuration stated) into ``output_dir``; return the paths written. The
    PNGs have a folder of their own: DVC declares it as one output, whatever the benchmarks are
    called."""
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
    report.write_text(markdown_report(metrics, config))
    return written + [report]


def _plot(rows: list[dict], axis: str, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(8.5, 4.5))
    for family, label in FAMILIES.items():
        points = sorted((r for r in rows if r["method"] == family), key=lambda r: r[axis])
        if not points:
            continue
        xs = [p[axis] for p in points]
        style = "--" if family in ("pass", "vgs_pass") else "-"
        (line,) = ax.plot(xs, [p["accuracy"] for p in points], style, marker="o", label=label)
        lows, highs = [p["ci_low"] for p in points], [p["ci_high"] for p in points]
        ax.fill_between(xs, lows, highs, alpha=0.15, color=line.get_color())
    for row in rows:
        if row["method"] == "pass@1":
            ax.axhline(row["accuracy"], color="black", linestyle=":", label="pass@1")
            ax.axhspan(row["ci_low"], row["ci_high"], color="black", alpha=0.07)
    ax.set_xscale("log", base=2 if axis == "budget" else 10)
    if axis == "budget":  # label the budgets themselves, not powers of two
        budgets = sorted({r["budget"] for r in rows if r["method"] != "pass@1"})
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
    ax.set_xlabel("budget N (responses per problem)" if axis == "budget"
                  else "FLOPs per problem (policy + value model)")  # fmt: skip
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def configuration_lines(config) -> list[str]:
    """What the numbers were measured with (policy, value model, budgets, search, seeds)."""
    if config is None:
        return []
    search = config.search
    dvts = (f"DVTS: {config.dvts_budget} per search, R in {config.dvts_searches}"
            if config.dvts_searches else "DVTS: off")  # fmt: skip
    return [
        "## Configuration",
        "",
        f"- policy `{config.policy.model}` ({config.policy.backend}); value model "
        f"`{config.value_model}` ({config.value_dtype} on {config.value_device}, "
        f"{config.scorer} scorer)",
        f"- sampling: temperature {config.sampling.temperature}, top-p {config.sampling.top_p}, "
        f"at most {config.sampling.max_response_tokens} response tokens",
        f"- independent budgets {config.budgets} (one pool of {config.independent_pool} samples "
        f"per problem, disjoint subsets as trials); search budgets {config.search_budgets}",
        f"- search: beam width {search.beam_width}, blocks of {search.block_tokens} tokens"
        f"{' or one line' if search.line_blocks else ''}, at most "
        f"{search.max_children_per_parent or 'any'} kept beams per parent; "
        f"{config.search_seeds} search seed(s) per budget; {dvts}",
        f"- votes: answer classes by {config.grouping}, best-of-N ties: {config.bon_ties}; "
        "FLOPs as run, and in parentheses the official count (every candidate re-encoded whole, "
        "final beams scored again)",
        f"- benchmarks: {', '.join(b.name for b in config.benchmarks)} (first "
        f"{config.max_problems or 'all'} problems each); CIs: {config.bootstrap_resamples} "
        "bootstrap resamples over problems, within-problem CI as the paper's code",
        "",
    ]


def markdown_report(metrics: dict, config=None) -> str:
    """Per benchmark: the plots, a table of every method (accuracy, CIs, compute), the paired
    differences; and the configuration."""
    lines = ["# Evaluation: value-guided search vs baselines", ""]
    lines += [
        "Accuracy in %, with the 95% bootstrap CI over problems and the within-problem CI "
        "(repeated trials on these problems; with one trial, the spread across problems). "
        "`trials`: repetitions per problem. FLOPs and tokens are per problem and run.",
        "",
    ]
    for benchmark, methods in metrics.items():
        lines += [f"## {benchmark}", ""]
        lines += [f"![accuracy vs budget](figures/{benchmark}_budget.png)",
                  f"![accuracy vs FLOPs](figures/{benchmark}_flops.png)", ""]  # fmt: skip
        lines += [
            "| method | accuracy | 95% CI (problems) | 95% CI (within) | trials | gen tokens | "
            "value tokens (official count) | FLOPs (official count) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, m in methods.items():
            if key == "paired":
                continue
            lines.append(
                f"| {key} | {_pct(m['mean'])} | {_pct(m['ci_low'])}–{_pct(m['ci_high'])} | "
                f"{_pct(m['ci_within_low'])}–{_pct(m['ci_within_high'])} | {m['trials']} | "
                f"{m['gen_tokens']:,.0f} | {m['value_tokens']:,.0f} "
                f"({m['value_tokens_full']:,.0f}) | {m['flops']:.3g} ({m['flops_full']:.3g}) |"
            )
        lines += ["", *paired_table(methods.get("paired", {})), ""]
    return "\n".join(lines + configuration_lines(config)) + "\n"


def paired_table(paired: dict) -> list[str]:
    if not paired:
        return []
    lines = ["| paired difference (points) | mean | 95% CI |", "|---|---|---|"]
    for key, d in paired.items():
        lines.append(f"| {key} | {_pct(d['mean'])} | {_pct(d['ci_low'])}–{_pct(d['ci_high'])} |")
    return lines


def headline_block(metrics: dict) -> str:
    """The README's generated block: per benchmark, pass@1 and every method at the largest
    search budget with its CIs, and the paired differences there, from ``metrics.json``.

    The bolded headline is value-guided search at that budget: DVTS when it reaches it (as the
    paper's code reaches large budgets: R searches of a fixed N pooled), else one search."""
    lines = [README_BEGIN, ""]
    for benchmark, methods in metrics.items():
        budget = max(int(k.split("@")[1]) for k in methods if k.startswith(("vgs@", "dvts@")))
        headline = f"dvts@{budget}" if f"dvts@{budget}" in methods else f"vgs@{budget}"
        keys = ["pass@1"] + [k for k in methods if k.endswith(f"@{budget}") and k != "pass@1"]
        lines += [f"`{benchmark}`, {len(keys)} methods at N={budget}, accuracy in %, 95% CIs "
                  "over problems and within problems (`trials` repetitions each):", ""]  # fmt: skip
        lines += ["| method | accuracy | 95% CI (problems) | 95% CI (within) | trials |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for key in keys:
            m = methods[key]
            name = f"**{key}**" if key == headline else key
            lines.append(
                f"| {name} | {_pct(m['mean'])} | {_pct(m['ci_low'])}–{_pct(m['ci_high'])} | "
                f"{_pct(m['ci_within_low'])}–{_pct(m['ci_within_high'])} | {m['trials']} |"
            )
        paired = {k: v for k, v in methods.get("paired", {}).items() if k.endswith(f"@{budget}")}
        lines += ["", *paired_table(paired), ""]
    return "\n".join(lines + [README_END])


def update_readme(readme: str | Path, metrics_path: str | Path) -> bool:
    """Replace the marked block of ``readme`` with ``headline_block``; True if it changed.

    Raises:
        ConfigError: the README has no marked block (add the two marker lines where it goes).
    """
    readme = Path(readme)
    text = readme.read_text()
    pattern = re.compile(re.escape(README_BEGIN) + r".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        raise ConfigError(
            f"{readme} has no block between {README_BEGIN!r} and {README_END!r}: add both lines"
        )
    block = headline_block(json.loads(Path(metrics_path).read_text()))
    updated = pattern.sub(lambda _: block, text)
    if updated != text:
        readme.write_text(updated)
    return updated != text


def main(argv: list[str] | None = None) -> None:
    """``python -m tracefactory.search.report README.md [reports/evaluate/metrics.json]``."""
    parser = argparse.ArgumentParser(description="Rewrite a README's generated evaluate block.")
    parser.add_argument("readme")
    parser.add_argument("metrics", nargs="?", default="reports/evaluate/metrics.json")
    args = parser.parse_args(argv)
    changed = update_readme(args.readme, args.metrics)
    print(f"{args.readme}: {'updated' if changed else 'already up to date'}")


if __name__ == "__main__":
    main()
