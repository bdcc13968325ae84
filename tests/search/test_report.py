"""The README's generated headline block: rewritten from metrics.json, nothing hand-copied."""

from __future__ import annotations

import json

import pytest

from tracefactory.errors import ConfigError
from tracefactory.search.report import README_BEGIN, README_END, plot_rows, update_readme


def interval(mean: float, trials: int = 3) -> dict:
    return {"mean": mean, "ci_low": mean - 0.05, "ci_high": mean + 0.05, "trials": trials,
            "ci_within_low": mean - 0.01, "ci_within_high": mean + 0.01, "flops": 1e6}  # fmt: skip


METRICS = {
    "synthetic_test": {
        "pass@1": interval(0.5, 16),
        "mv@4": interval(0.55, 4),
        "mv@16": interval(0.6, 1),
        "vgs@16": interval(0.671),
        "random@16": interval(0.58),
        "paired": {"vgs@16-mv@16": {"mean": 0.071, "ci_low": 0.02, "ci_high": 0.12}},
    }
}


def test_readme_block_is_rewritten_from_metrics(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps(METRICS))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\nold 63.5%\n{README_END}\noutro\n")
    assert update_readme(readme, metrics)
    text = readme.read_text()
    assert "old 63.5%" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "| **vgs@16** | 67.1 | 62.1–72.1 | 66.1–68.1 | 3 |" in text
    assert "| vgs@16-mv@16 | 7.1 | 2.0–12.0 |" in text
    assert "mv@4" not in text  # only the largest search budget
    assert not update_readme(readme, metrics)  # a rerun on the same metrics changes nothing


def test_dvts_is_the_headline_where_it_reaches_the_largest_budget(tmp_path):
    metrics = json.loads(json.dumps(METRICS))
    bench = metrics["synthetic_test"]
    bench |= {"dvts@64": interval(0.7), "mv@64": interval(0.6), "vgs@8": interval(0.62)}
    del bench["vgs@16"], bench["random@16"]
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_BEGIN}\n{README_END}\n")
    update_readme(readme, tmp_path / "metrics.json")
    text = readme.read_text()
    assert "| **dvts@64** | 70.0 |" in text and "| mv@64 | 60.0 |" in text
    assert "vgs@8" not in text


def test_readme_without_markers_is_refused(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps(METRICS))
    (tmp_path / "README.md").write_text("no block here\n")
    with pytest.raises(ConfigError, match="add both lines"):
        update_readme(tmp_path / "README.md", metrics)


def test_plot_rows_are_in_percent_with_pass_at_1_apart():
    rows = plot_rows(METRICS)
    vgs = next(r for r in rows if r["method"] == "vgs")
    assert vgs["accuracy"] == pytest.approx(67.1) and vgs["budget"] == 16
    assert {r["method"] for r in rows} == {"pass@1", "mv", "vgs", "random"}


def test_figure_parts_voting_from_search_and_keeps_methods_apart():
    """Seven methods at three budgets with overlapping intervals stay readable: voting and search
    in two panels on one scale, methods at one budget side by side, legends under the panels."""
    import matplotlib.pyplot as plt
    from matplotlib.container import ErrorbarContainer

    from tracefactory.search.report import accuracy_figure

    bench = {"pass@1": interval(0.5, 16), "paired": {}}
    for method in ("mv", "wmv", "bon", "vgs", "vgs_bon", "random"):
        bench |= {f"{method}@{n}": interval(0.6) for n in (4, 16)}
    figure = accuracy_figure(plot_rows({"b": bench}), "budget", "b")
    try:
        voting, search = figure.axes[:2]
        figure.canvas.draw()

        def methods(ax) -> dict[str, list[float]]:
            return {
                c.get_label(): list(c.lines[0].get_xdata())
                for c in ax.containers
                if isinstance(c, ErrorbarContainer)
            }

        assert set(methods(voting)) == {"MV", "WMV", "BoN"}
        drawn = methods(search)
        assert set(drawn) == {"VGS (WMV over beams)", "VGS, BoN over beams",
                              "random control (same search)"}  # fmt: skip
        at_16 = [xs[-1] for xs in drawn.values()]
        assert len(set(at_16)) == 3 and all(2**-0.2 < x / 16 < 2**0.2 for x in at_16)
        assert voting.get_ylim() == search.get_ylim()
        renderer = figure.canvas.get_renderer()
        for ax in (voting, search):
            legend = ax.get_legend().get_window_extent(renderer)
            assert legend.y1 <= ax.get_window_extent(renderer).y0
    finally:
        plt.close(figure)


def test_the_readme_headline_is_the_one_generated_from_the_committed_metrics():
    """The committed README's headline block is exactly what the committed reference run's
    reports/evaluate/metrics.json gives."""
    from locations import REPO

    from tracefactory.search.report import headline_block

    metrics = json.loads((REPO / "reports" / "evaluate" / "metrics.json").read_text())
    assert headline_block(metrics) in (REPO / "README.md").read_text()
