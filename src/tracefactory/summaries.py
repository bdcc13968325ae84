"""The short summary each stage leaves for ``dvc metrics show`` beside its detailed report.

``dvc metrics show`` and ``dvc exp show`` print every leaf of every metrics file as one column of a
single table, so the detailed reports (hundreds of leaves) made lines thousands of characters wide.
A summary holds only the few numbers a person compares across experiments, under names shared
between stages (``rows``, ``tokens``) and independent of the configured budgets (``vgs``, not
``vgs@16``), so a sweep fills one column instead of a new column per value. The detail stays in
``reports/<stage>/metrics.json``, an ordinary output.

Each stage's ``summary`` (``Stage.summary``) builds its own from these names; the steps that are not
table stages (the dataset export, training, the evaluation's aggregate) have theirs here.
``tracefactory.stages.SUMMARIES`` lists every one by stage name.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

from tracefactory.stats import write_metrics

METRICS_NAME = "metrics.json"  # the detail
SUMMARY_NAME = "summary.json"  # beside the stage's detailed metrics.json
DIGITS = 4  # rounding of fractions: differences below 1e-4 are noise at these sample sizes
PERCENT_DIGITS = 2  # rounding of shares and accuracies, which are in percent (as in the README)
# The evaluation methods summarised, at the largest budget each was run at: the headline comparison
# (value-guided search against majority voting and its random-choice control). The rest, with CIs,
# is in the detail.
EVALUATE_METHODS = ("pass", "mv", "vgs", "dvts", "random")
# The paired differences summarised (percentage points, with the 95% CI over problems) at the
# largest budget both were run at: whether VGS beats voting, its random control, and the
# value-weighted vote over independent samples (the paper's comparison at equal budget).
EVALUATE_PAIRS = (("vgs", "mv"), ("vgs", "random"), ("vgs", "wmv"))
_BUDGETED = re.compile(r"^(?P<method>[a-z_]+)@(?P<budget>\d+)$")


class SummaryKey(StrEnum):
    """Names shared by the stages' summaries: one column each in ``dvc metrics show``."""

    ROWS = "rows"
    TOKENS = "tokens"
    MATCH_RATE = "match_rate"
    BRIER = "brier"
    AUROC = "auroc"
    PAIRWISE = "pairwise"


def fraction(value: float | None) -> float | None:
    """A fraction for a summary, rounded to ``DIGITS``."""
    return None if value is None else round(float(value), DIGITS)


def percent(value: float | None) -> float | None:
    """A share for a summary, in percent (every accuracy and rate a person reads is in percent)."""
    return None if value is None else round(100 * float(value), PERCENT_DIGITS)


def dataset_summary(detail: dict) -> dict:
    """Rows of the default config, every split together."""
    return {SummaryKey.ROWS: sum(detail["rows"].get("default", {}).values())}


def train_summary(detail: dict) -> dict:
    """The value model's validation Brier score, AUROC and within-problem pairwise accuracy (in
    percent)."""
    val = detail.get("val", {})
    return {
        SummaryKey.BRIER: fraction(val.get("brier")),
        SummaryKey.AUROC: fraction(val.get("auroc")),
        SummaryKey.PAIRWISE: percent(val.get("pairwise_accuracy")),
    }


def evaluate_summary(detail: dict) -> dict:
    """Per benchmark, each headline method's accuracy at the largest budget it was run at.

    ``pass@1`` is reported as ``pass``; the budget is dropped from every name so that sweeping
    ``evaluate.budgets`` keeps the same columns.
    """
    summary = {}
    for benchmark, methods in sorted(detail.items()):
        if not isinstance(methods, dict):
            continue
        best: dict[str, tuple[int, float]] = {}
        for name, result in methods.items():
            match = _BUDGETED.match(name)
            if match is None or not isinstance(result, dict) or "mean" not in result:
                continue
            method, budget = match["method"], int(match["budget"])
            if method in EVALUATE_METHODS and budget >= best.get(method, (-1, 0.0))[0]:
                best[method] = (budget, result["mean"])
        summary[benchmark] = {m: percent(best[m][1]) for m in EVALUATE_METHODS if m in best}
        summary[benchmark] |= _paired_summary(methods.get("paired") or {})
    return summary


def _paired_summary(paired: dict) -> dict:
    """``{"vgs-mv": {"mean", "ci_low", "ci_high"}}`` in points, at each pair's largest budget."""
    found: dict[str, tuple[int, dict]] = {}
    for name, result in paired.items():
        first, _, second = name.partition("-")
        a, b = _BUDGETED.match(first), _BUDGETED.match(second)
        if a is None or b is None or a["budget"] != b["budget"]:
            continue
        pair, budget = f"{a['method']}-{b['method']}", int(a["budget"])
        wanted = (a["method"], b["method"]) in EVALUATE_PAIRS
        if wanted and budget >= found.get(pair, (-1, {}))[0]:
            found[pair] = (budget, result)
    return {
        pair: {k: percent(result[k]) for k in ("mean", "ci_low", "ci_high")}
        for pair, (_, result) in sorted(found.items())
    }


def write_reports(
    folder: str | Path, report: dict, summary: dict, side: dict[str, bytes] | None = None
) -> None:
    """Write a step's reports: the detailed ``metrics.json``, the short ``summary.json`` DVC shows,
    and each side output as ``<name>.json`` (see `side_output_document`)."""
    folder = Path(folder)
    write_metrics(folder / METRICS_NAME, report)
    write_metrics(folder / SUMMARY_NAME, summary)
    for name, content in (side or {}).items():
        (folder / f"{name}.json").write_bytes(side_output_document(content))


def side_output_document(json_lines: bytes) -> bytes:
    """A side output's JSON lines as one JSON array, one row per line (``[]`` when it has none).

    Never an empty file: DVC warns "'<file>' is empty" for every empty output on every run, and
    a run that drops nothing is the common case. One row per line keeps it readable with grep and
    diff; ``json.load``, ``pl.read_json`` and ``pandas.read_json`` read it whole.
    """
    rows = json_lines.splitlines()
    return b"[\n" + b",\n".join(rows) + b"\n]\n" if rows else b"[]\n"
