"""The card's figures follow the data: no one-bar panels, bins that match the values."""

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from tracefactory.dataset.figures import _histogram, _success_by_group
from tracefactory.dataset.stats import DatasetStats


def _axes():
    figure, ax = plt.subplots()
    return figure, ax


def test_one_source_and_one_policy_share_one_panel_of_two_bars():
    rows = pl.DataFrame(
        {
            "problem_id": ["a", "a", "b", "b"],
            "source": ["synthetic"] * 4,
            "rollin_policy": ["tiny"] * 4,
            "label": [1, 0, 1, 1],
        },
        schema_overrides={"label": pl.Int8},
    )
    stats = DatasetStats(rows=rows, verdicts=pl.DataFrame())
    figure, ax = _axes()
    try:
        _success_by_group(stats, [ax])
        labels = [tick.get_text() for tick in ax.get_yticklabels()]
        assert len(ax.patches) == 2
        assert set(labels) == {"source: synthetic", "roll-in policy: tiny"}
    finally:
        plt.close(figure)


def test_a_mean_over_six_rollouts_gets_one_bar_per_possible_value():
    values = np.array([k / 6 for k in (0, 1, 1, 3, 3, 3, 5, 6)])
    figure, ax = _axes()
    try:
        _histogram(ax, values, "blue")
        centres = sorted(round(p.get_x() + p.get_width() / 2, 6) for p in ax.patches)
        assert centres == [round(k / 6, 6) for k in (0, 1, 3, 5, 6)]
        assert sorted(p.get_height() for p in ax.patches) == [1, 1, 1, 2, 3]
    finally:
        plt.close(figure)


def test_token_counts_are_binned_on_whole_tokens():
    values = np.arange(0, 400)  # more distinct values than bars
    figure, ax = _axes()
    try:
        _histogram(ax, values, "blue", integer=True)
        edges = [p.get_x() for p in ax.patches]
        assert all(float(edge + 0.5).is_integer() for edge in edges)
        assert sum(p.get_height() for p in ax.patches) == values.size
    finally:
        plt.close(figure)


def test_a_few_repeated_lengths_over_a_wide_range_get_visible_bars():
    """The toy world's roll-ins: four lengths carry nearly every row, one outlier sets the range;
    one bar per distinct value would be a hairline 1/200 of the axis wide."""
    values = np.array([29] * 50 + [42] * 60 + [57] * 60 + [74] * 40 + [58, 75, 224])
    figure, ax = _axes()
    try:
        _histogram(ax, values, "blue", integer=True)
        spread = values.max() - values.min()
        assert min(p.get_width() for p in ax.patches) >= spread / 40
        assert all(float(p.get_x() + 0.5).is_integer() for p in ax.patches)
        assert sum(p.get_height() for p in ax.patches) == values.size
    finally:
        plt.close(figure)
