"""The card's figures (PNG, matplotlib's Agg backend), drawn from ``DatasetStats``.

Each function draws one figure and returns its file name; the card links them as
``figures/<name>.png`` so they render on the Hub and in any Markdown viewer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen before pyplot loads

from tracefactory.dataset.stats import CUT_BINS, DatasetStats  # noqa: E402
from tracefactory.schemas import CLASS_NAMES  # noqa: E402

CLASS_COLORS = {0: "#d62728", 1: "#2ca02c", 2: "#7f7f7f"}
_MAX_BARS = 40  # beyond this many distinct values a histogram bins them
FIGURE_FILES = {
    "class_balance": "Class balance of the roll-outs",
    "success_by_group": "Success rate by problem source and by roll-in policy",
    "lengths": "Length histograms",
    "branch_points": "Branch-point distribution",
    "success_vs_cut": "Success probability vs. relative cut position",
    "mc_value_spread": "Per-problem Monte Carlo value and branch-value spread",
}


def _class_balance(stats: DatasetStats, ax_row) -> None:
    balance = stats.class_balance()
    labels = balance["label"].to_list()
    for ax, column, title in zip(
        ax_row, ("rollouts", "tokens"), ("roll-outs", "labelled tokens"), strict=True
    ):
        ax.bar(
            [CLASS_NAMES[k] for k in labels],
            balance[column].to_list(),
            color=[CLASS_COLORS[k] for k in labels],
        )
        ax.set_title(f"{title} per class")
        ax.set_ylabel("count")


def _success_by_group(stats: DatasetStats, ax_row) -> None:
    """One panel for both groupings: a grouping with a single value would be a one-bar chart."""
    names, rates = [], []
    for column, label in (("source", "source"), ("rollin_policy", "roll-in policy")):
        frame = stats.success_by(column)
        names += [f"{label}: {value}" for value in frame[column]]
        rates += frame["success_rate"].to_list()
    ax = ax_row[0]
    ax.barh(names[::-1], rates[::-1], color="#1f77b4")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of roll-outs correct")
    ax.set_title("success rate by source and roll-in policy")


def _histogram(ax, values: np.ndarray, color: str, integer: bool = False) -> None:
    """Bins that follow the data and stay visible at any range.

    Few distinct values on a coarse grid (a per-problem mean over n roll-outs takes only n + 1
    values) get one bar each. Anything else is binned into at most ``_MAX_BARS`` bins (fewer for
    few rows), whole-token bins for counts: one bar per distinct length would draw hairlines when
    a few lengths repeat across a wide range (a toy roll-in of 29 to 224 tokens, or 16K at paper
    scale).
    """
    values = values[~np.isnan(values)] if values.dtype.kind == "f" else values
    if values.size == 0:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    distinct = np.unique(values)
    spread = float(distinct[-1] - distinct[0])
    bins = int(np.clip(np.ceil(np.sqrt(values.size)), 10, _MAX_BARS))
    gap = float(np.diff(distinct).min()) if distinct.size > 1 else 1.0
    if distinct.size <= _MAX_BARS and gap >= spread / _MAX_BARS:
        counts = [(values == v).sum() for v in distinct]
        ax.bar(distinct, counts, width=0.8 * gap, color=color)
    elif integer:
        width = max(1, int(np.ceil((spread + 1) / bins)))
        edges = np.arange(distinct[0], distinct[-1] + width + 1, width) - 0.5
        ax.hist(values, bins=edges, color=color)
    else:
        ax.hist(values, bins=bins, color=color)
    ax.set_ylabel("count")


def _lengths(stats: DatasetStats, ax_row) -> None:
    columns = (
        ("rollin_length", "roll-in (generated)"),
        ("context_length", "context (prompt + prefix)"),
        ("rollout_length", "roll-out (supervised)"),
    )
    for ax, (column, title) in zip(ax_row, columns, strict=True):
        _histogram(ax, stats.rows[column].to_numpy(), "#9467bd", integer=True)
        ax.set_title(title)
        ax.set_xlabel("tokens")


def _branch_points(stats: DatasetStats, ax_row) -> None:
    relative = stats.rows["relative_cut"].drop_nulls().to_numpy()
    ax_row[0].hist(relative, bins=20, range=(0, 1), color="#ff7f0e")
    ax_row[0].set_title("where roll-ins were cut")
    ax_row[0].set_xlabel("cut position / roll-in length")
    ax_row[0].set_ylabel("roll-outs")


def _success_vs_cut(stats: DatasetStats, ax_row) -> None:
    frame = stats.success_by_cut()
    centres = ((frame["bin"] + 0.5) / CUT_BINS).to_list()
    ax_row[0].plot(centres, frame["success_rate"].to_list(), marker="o", color="#2ca02c")
    ax_row[0].set_xlim(0, 1)
    ax_row[0].set_ylim(0, 1)
    ax_row[0].set_xlabel("cut position / roll-in length")
    ax_row[0].set_ylabel("P(roll-out correct)")
    ax_row[0].set_title("success vs. cut position")


def _mc_value_spread(stats: DatasetStats, ax_row) -> None:
    values = stats.problem_values()
    _histogram(ax_row[0], values["mc_value"].to_numpy(), "#17becf")
    ax_row[0].set_title("per-problem MC value")
    ax_row[0].set_xlabel("mean success of its roll-outs")
    _histogram(ax_row[1], values["branch_value_std"].to_numpy(), "#bcbd22")
    ax_row[1].set_title("spread of branch values")
    ax_row[1].set_xlabel("std within a problem")


_DRAWERS: dict[str, tuple[int, Callable]] = {
    "class_balance": (2, _class_balance),
    "success_by_group": (1, _success_by_group),
    "lengths": (3, _lengths),
    "branch_points": (1, _branch_points),
    "success_vs_cut": (1, _success_vs_cut),
    "mc_value_spread": (2, _mc_value_spread),
}


def draw_figures(stats: DatasetStats, folder: str | Path) -> dict[str, str]:
    """Draw every figure into ``folder``; return {name: relative path from the card}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (panels, draw) in _DRAWERS.items():
        fig, axes = plt.subplots(1, panels, figsize=(max(5.6, 4.2 * panels), 3.4), squeeze=False)
        try:
            draw(stats, axes[0])
            fig.tight_layout()
            fig.savefig(folder / f"{name}.png", dpi=100, metadata={"Software": None})
        finally:
            plt.close(fig)
        paths[name] = f"{folder.name}/{name}.png"
    return paths
