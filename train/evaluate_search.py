"""Evaluate value-guided search against the baselines: the ``evaluate`` stage's recipe.

Run:
    python train/evaluate_search.py --params params.yaml [evaluate.search_seeds=4 ...]
    tracefactory evaluate --params params.yaml --set evaluate.search_seeds=4   # the same
Overrides are ``key=value`` on params.yaml (``evaluate.budgets=[4,8]``).

Reads the problems table's test split (and any benchmark files configured), the policy and
``models/value_model``; writes ``reports/evaluate/{metrics.json, run.json, report.md, *.png,
plots/accuracy.json}``. The work itself lives in ``tracefactory.search`` (runner.py, evaluate.py).
"""

from __future__ import annotations

import argparse
import logging
import os

from tracefactory.params import load_params
from tracefactory.search.runner import run_evaluation


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of params.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("TRACEFACTORY_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    params = load_params(args.params, args.overrides)
    return run_evaluation(params.evaluate, params.seed)


if __name__ == "__main__":
    main()
