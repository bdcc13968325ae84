"""How fast the grader's bounds act: the seconds from a call to its verdict when a comparison
hangs (timeout), when a worker is stopped (hard kill), when a comparison exhausts its memory
(memory limit), and for an adversarial response (20,000 unclosed boxes, linear-time extraction).
tests/grading asserts which verdict each gives; this prints how long each took beside its limit.

Run: .venv/bin/python benchmarks/bench_grader_bounds.py
"""

from __future__ import annotations

import os
import signal
import time

from tracefactory.grading import Grader

PATHOLOGICAL = r"</think>\boxed{2^{2^{2^{100}}}}"
HUGE = r"</think>\boxed{2^{2^{32}}}"
UNCLOSED_BOXES = "</think>" + "\\boxed{" * 20_000


def seconds(grader: Grader, response: str, gold: str) -> tuple[float, str]:
    start = time.perf_counter()
    verdict = grader.grade(response, gold)
    return time.perf_counter() - start, str(verdict.reason)


def main() -> None:
    rows = []
    with Grader(workers=1, timeout_s=1.5, cache_size=0) as grader:
        grader.grade(r"</think>\boxed{1}", "1")  # the worker started and warm
        rows.append(("pathological comparison", 1.5, *seconds(grader, PATHOLOGICAL, "16")))
        os.kill(grader._pool._workers[0].process.pid, signal.SIGSTOP)
        rows.append(("stopped worker (hard kill)", 1.5, *seconds(grader, r"\boxed{2}", "2")))
    with Grader(workers=1, timeout_s=30.0, memory_mb=400, cache_size=0) as grader:
        grader.grade(r"</think>\boxed{1}", "1")
        rows.append(("memory limit (400 MiB)", 30.0, *seconds(grader, HUGE, "3")))
    with Grader(workers=1, timeout_s=5.0, thinking="none", cache_size=0) as grader:
        grader.grade(r"\boxed{1}", "1")
        rows.append(("20,000 unclosed boxes", 5.0, *seconds(grader, UNCLOSED_BOXES, "3")))
    print(f"{'case':<28} {'limit s':>8} {'verdict s':>10} {'ratio':>6}  reason")
    for case, limit, took, reason in rows:
        print(f"{case:<28} {limit:>8.1f} {took:>10.2f} {took / limit:>6.2f}  {reason}")


if __name__ == "__main__":
    main()
