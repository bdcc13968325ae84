"""Grader throughput: verdicts/s with 1 and 2 workers, with the cache, beside a plain in-process
math-verify loop over the same pairs (the baseline has no hard timeout and no reasons). With the
cache warm every comparison is a hit, but each response still travels to a worker to be extracted
(the caller never reads it), so that row measures the pipe, about 2 MB for real_outputs.

Run: .venv/bin/python benchmarks/bench_grader.py [--pairs FILE.jsonl]  (default: real_outputs)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

from tracefactory.grading import Grader

DEFAULT_PAIRS = (
    Path(
        os.environ.get(
            "TRACEFACTORY_BENCHMARKS", Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
        )
    )
    / "real_outputs.jsonl"
)  # $TRACEFACTORY_BENCHMARKS, or ../shared/benchmarks beside the repository


def load_pairs(path: Path) -> list[tuple[str, str]]:
    """(response, gold) pairs from a JSONL file with response/gold fields."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [(row["response"], row["gold"]) for row in rows]


def plain_math_verify(pairs: list[tuple[str, str]]) -> float:
    """Seconds for the usual loop: parse(gold), parse(whole response), verify, in this process."""
    from math_verify import parse, verify

    start = time.perf_counter()
    for response, gold in pairs:
        verify(parse(f"${gold}$"), parse(response))
    return time.perf_counter() - start


def grader_seconds(pairs: list[tuple[str, str]], workers: int, cached: bool) -> float:
    """Seconds for Grader.grade_many over `pairs` (workers started and warm beforehand)."""
    with Grader(workers=workers, timeout_s=10.0, thinking="auto", cache_size=10**6) as grader:
        grader.grade_many([(r"</think>\boxed{1}", "2")] * 1)  # wait for workers to be ready
        if cached:
            grader.grade_many(pairs)
        elif workers > 1:  # make sure every worker is ready, not just the first
            grader.grade_many([(rf"\boxed{{{i}}}", "0") for i in range(4 * workers)])
        start = time.perf_counter()
        grader.grade_many(pairs)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS)
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    pairs = load_pairs(args.pairs)
    n = len(pairs)
    timings = {
        "plain math-verify (in-process)": plain_math_verify(pairs),
        "Grader 1 worker": grader_seconds(pairs, workers=1, cached=False),
        "Grader 2 workers": grader_seconds(pairs, workers=2, cached=False),
        "Grader 2 workers, cache warm": grader_seconds(pairs, workers=2, cached=True),
    }
    baseline = n / timings["plain math-verify (in-process)"]
    print(f"{n} pairs from {args.pairs}")
    for name, seconds in timings.items():
        rate = n / seconds
        print(f"{name:34s} {rate:10.1f} verdicts/s   x{rate / baseline:6.2f} vs plain")
    one, two = n / timings["Grader 1 worker"], n / timings["Grader 2 workers"]
    print(f"2 workers / 1 worker: x{two / one:.2f}")


if __name__ == "__main__":
    main()
