"""The end-of-run summary reads the reports a run wrote: rows, metrics, headline with CIs, in %."""

import json
import shutil
from pathlib import Path

from tracefactory.params import Params
from tracefactory.run_summary import render_run_summary

REPO = Path(__file__).parents[1]


def test_the_summary_holds_rows_value_model_metrics_and_the_headline(tmp_path, monkeypatch):
    for report in ("label/summary.json", "train/metrics.json", "evaluate/metrics.json"):
        (tmp_path / "reports" / report).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "reports" / report, tmp_path / "reports" / report)
    monkeypatch.chdir(tmp_path)
    text = render_run_summary(Params())
    detail = json.loads((REPO / "reports/evaluate/metrics.json").read_text())
    bench = detail["synthetic_test"]
    rows = json.loads((REPO / "reports/label/summary.json").read_text())["rows"]
    assert f"  rows: label {rows:,}" in text.splitlines()
    assert "labels:" not in text  # no labels table here: no class balance rather than a guess
    pairwise = json.loads((REPO / "reports/train/metrics.json").read_text())["val"]
    assert f"pairwise accuracy {100 * pairwise['pairwise_accuracy']:.1f}%" in text
    vgs = bench["vgs@16"]
    assert f"vgs@16 {100 * vgs['mean']:.1f} [{100 * vgs['ci_low']:.1f}, " in text
    paired = bench["paired"]["vgs@16-mv@16"]
    assert f"vgs-mv: {100 * paired['mean']:+.1f} points" in text
