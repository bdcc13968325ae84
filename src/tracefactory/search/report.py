"""The evaluate stage's outputs besides metrics.json: DVC plot data, PNG plots, report.md, and the
README's generated headline.

Plots per benchmark, accuracy in percent against budget N and against FLOPs per problem (policy
+ value model), in two panels on one y scale: voting over independent samples (MV, WMV, BoN) and
the searches (VGS, DVTS, the random control), with MV repeated faintly in the second as the
reference the searches are judged against. Each method is a line with 95% bootstrap error bars,
shifted slightly along x so that methods at the same budget do not hide each other; oracles
(pass@N) are dashed, pass@1 is a dotted line with its band across both panels, and each legend
sits under its panel so it never covers data. ``python -m tracefactory.search.report`` rewrites
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

# Method families drawn as lines, with their legend labels and colours (the same in both panels).
FAMILIES = {
    "vgs": ("VGS (WMV over beams)", "#1f77b4"),
    "vgs_bon": ("VGS, BoN over beams", "#17becf"),
    "dvts": ("DVTS", "#9467bd"),
    "random": ("random control (same search)", "#ff7f0e"),
    "wmv": ("WMV", "#d62728"),
    "mv": ("MV", "#2ca02c"),
    "bon": ("BoN", "#8c564b"),
    "pass": ("pass@N (oracle)", "#e377c2"),
    "vgs_pass": ("VGS pass@N (oracle)", "#7f7f7f"),
}
ORACLES = ("pass", "vgs_pass")
# The two panels: their titles, the families each draws, and the one repeated as a reference.
PANELS = (
    ("voting over independent samples", ("wmv", "mv", "bon", "pass"), None),
    ("search guided by the value model", ("vgs", "vgs_bon", "dvts", "random", "vgs_pass"), "mv"),
)
DODGE = 0.05  # shift between neighbouring methods, in doublings of x (log axis)
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
    plt = _pyplot()
    rows = plot_rows(metrics)
    data_path = output_dir / "plots" / "accuracy.json"
    data_path.write_text(json.dumps(rows, indent=1) + "\n")
    written = [data_path]
    for benchmark in metrics:
        bench_rows = [r for r in rows if r["benchmark"] == benchmark]
        for axis in ("budget", "flops"):
            path = output_dir / "figures" / f"{benchmark}_{axis}.png"
            figure = accuracy_figure(bench_rows, axis, f"{benchmark}: accuracy vs {axis}")
            figure.savefig(path, dpi=100)
            plt.close(figure)
            written.append(path)
    report = output_dir / "report.md"
    report.write_text(markdown_report(metrics, config))
    return written + [report]


def accuracy_figure(rows: list[dict], axis: str, title: str):
    """The two panels of one benchmark's accuracy against ``axis`` (``budget`` or ``flops``), from
    its `plot_rows`; the caller saves and closes the matplotlib figure."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(12, 5.2), sharey=True, layout="constrained")
    for ax, (panel, families, reference) in zip(axes, PANELS, strict=True):
        present = [f for f in families if any(r["method"] == f for r in rows)]
        for index, family in enumerate(present):
            _draw_family(ax, rows, axis, family, (index - (len(present) - 1) / 2) * DODGE)
        if reference and any(r["method"] == reference for r in rows):
            _draw_reference(ax, rows, axis, reference)
        _draw_pass_at_1(ax, rows)
        _style_axes(ax, rows, axis, panel)
    axes[0].set_ylabel("accuracy (%)")
    figure.suptitle(title)
    return figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, whatever display the machine has
    import matplotlib.pyplot as plt

    return plt


def _draw_family(ax, rows: list[dict], axis: str, family: str, shift: float) -> None:
    """One method: its line with 95% error bars, moved ``shift`` doublings along x."""
    points = sorted((r for r in rows if r["method"] == family), key=lambda r: r[axis])
    label, color = FAMILIES[family]
    xs = [p[axis] * 2**shift for p in points]
    ys = [p["accuracy"] for p in points]
    bounds = [(p["ci_low"], p["ci_high"]) for p in points]
    errors = None
    if all(low is not None and high is not None for low, high in bounds):
        errors = [[y - low for y, (low, _) in zip(ys, bounds, strict=True)],
                  [high - y for y, (_, high) in zip(ys, bounds, strict=True)]]  # fmt: skip
    oracle = family in ORACLES
    ax.errorbar(
        xs, ys, yerr=errors, color=color, label=label, marker="o", markersize=4,
        linestyle="--" if oracle else "-", linewidth=1.2, elinewidth=1, capsize=3,
        alpha=0.6 if oracle else 1.0,
    )  # fmt: skip


def _draw_reference(ax, rows: list[dict], axis: str, family: str) -> None:
    points = sorted((r for r in rows if r["method"] == family), key=lambda r: r[axis])
    label, color = FAMILIES[family]
    ax.plot([p[axis] for p in points], [p["accuracy"] for p in points], color=color,
            linewidth=2.5, alpha=0.3, label=f"{label} (reference, left panel)")  # fmt: skip


def _draw_pass_at_1(ax, rows: list[dict]) -> None:
    for row in rows:
        if row["method"] == "pass@1":
            ax.axhline(row["accuracy"], color="black", linestyle=":", label="pass@1")
            if row["ci_low"] is not None and row["ci_high"] is not None:
                ax.axhspan(row["ci_low"], row["ci_high"], color="black", alpha=0.06)


def _style_axes(ax, rows: list[dict], axis: str, panel: str) -> None:
    ax.set_xscale("log", base=2 if axis == "budget" else 10)
    if axis == "budget":  # label the budgets themselves, not powers of two
        budgets = sorted({r["budget"] for r in rows if r["method"] != "pass@1"})
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
    ax.set_xlabel("budget N (responses per problem)" if axis == "budget"
                  else "FLOPs per problem (policy + value model)")  # fmt: skip
    ax.set_title(panel, fontsize="medium")
    ax.grid(alpha=0.3)
    from matplotlib.container import ErrorbarContainer

    # The methods first, in drawing order; the reference lines (pass@1, MV) after them.
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(handles)), key=lambda i: not isinstance(handles[i], ErrorbarContainer))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize="small",
              loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)  # fmt: skip


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
        paired = {
            k: v
            for k, v in methods.get("paired", {}).items()
            if k.partition("-")[0].endswith(f"@{budget}")
        }
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
