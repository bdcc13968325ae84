"""Grader worker process: ``python -m tracefactory.grading.worker SETTINGS_JSON``.

Started by the grader's pool (pool.py); reads tasks as JSON lines on stdin and answers each on
stdout. Everything that touches the untrusted response runs here, bounded three ways: the
worker's own SIGALRM (tasks run in its main thread, so the alarm works), an address-space limit
(``RLIMIT_AS``) set before any task, and the parent's hard kill as the backstop.

Two task kinds: ``extract`` (a batch of responses -> an answer or a final reason each) and
``compare`` (gold and answer -> reason), so the parent can cache comparisons by (gold, answer)
between the two.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import sys
from typing import IO

from tracefactory.grading.compare import (
    ComparisonSettings,
    GraderMode,
    bounded,
    compare_answers,
)
from tracefactory.grading.extract import extract
from tracefactory.grading.official import official_compare, official_extract
from tracefactory.grading.verdict import Reason
from tracefactory.stats import setup_logging

logger = logging.getLogger(__name__)

# A task whose peak address space came this close to the limit hit it, even if math-verify caught
# the MemoryError (it turns every exception of a comparison strategy into "not equal" and goes on
# trying others, for seconds).
_NEAR_LIMIT_FRACTION = 0.9
_WATCH_INTERVAL_S = 0.05  # CPU seconds between two looks at the peak address space


class MemoryLimitHit(BaseException):
    """Raised by the memory watch. A BaseException, so math-verify's ``except Exception`` cannot
    swallow it and keep a worker that already hit its limit busy until the timeout."""


class _MemoryWatch:
    """Checks the peak address space every `_WATCH_INTERVAL_S` of CPU time (SIGPROF) while a
    task runs, and stops the task with `MemoryLimitHit` once it nears the limit."""

    def __init__(self, memory_mb: int) -> None:
        self.threshold = _NEAR_LIMIT_FRACTION * memory_mb * 2**20
        self.armed = False
        signal.signal(signal.SIGPROF, self._check)
        signal.setitimer(signal.ITIMER_PROF, _WATCH_INTERVAL_S, _WATCH_INTERVAL_S)

    def hit(self) -> bool:
        peak = _peak_address_space()
        return peak is not None and peak >= self.threshold

    def _check(self, signum: int, frame: object) -> None:
        if self.armed and self.hit():
            self.armed = False
            raise MemoryLimitHit()


def _peak_address_space() -> int | None:
    """The process's peak virtual memory in bytes (VmPeak), or None where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def limit_memory(memory_mb: int) -> None:
    """Cap this process's address space at `memory_mb` MiB: a huge allocation then fails with
    MemoryError inside the worker instead of swapping the machine."""
    limit = memory_mb * 2**20
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError) as error:  # e.g. macOS refuses RLIMIT_AS; time bounds remain
        logger.warning("grader worker runs without a memory limit: %s", error)


def run_task(task: dict, settings: ComparisonSettings, soft_s: float) -> dict:
    """One task's reply: ``{"id", "reason"}`` for a comparison; ``{"id", "results"}`` for an
    extraction batch (one ``[reason or None, answer or None, last part or None]`` per response),
    or ``{"id", "reason": "timeout"}`` if the batch ran out of time."""
    official = settings.mode is GraderMode.OFFICIAL
    if task["kind"] == "extract":
        results = bounded(lambda: _extract_batch(task["items"], task["thinking"], official), soft_s)
        if results is None:
            return {"id": task["id"], "reason": str(Reason.TIMEOUT)}
        return {"id": task["id"], "results": results}
    if official:  # math-verify's own alarms bound it (official.py); the hard deadline remains
        return {"id": task["id"], "reason": str(official_compare(task["gold"], task["answer"]))}
    reason = bounded(lambda: compare_answers(task["gold"], task["answer"], settings), soft_s)
    return {"id": task["id"], "reason": str(reason or Reason.TIMEOUT)}


def _extract_batch(items: list[list], thinking: str, official: bool) -> list[list[str | None]]:
    """``[reason or None, answer or None, last part or None]`` for each ``[response, truncated]``
    item (official extraction ignores the thinking format and the truncated flag)."""
    results = []
    for response, truncated in items:
        if official:
            (reason, answer), last_part = official_extract(response), None
        else:
            extraction = extract(response, thinking=thinking, truncated=truncated)
            reason, answer, last_part = extraction.reason, extraction.answer, extraction.last_part
        results.append([None if reason is None else str(reason), answer, last_part])
    return results


def serve(
    requests: IO[str],
    replies: IO[str],
    settings: ComparisonSettings,
    soft_s: float,
    memory_mb: int | None = None,
) -> None:
    """Worker loop over JSON lines: one reply per task (see `run_task`).

    Sends ``{"id": "ready"}`` once math-verify is imported and warm, so the parent never starts a
    task's hard deadline while a fresh worker is still importing. End of input ends the loop (so a
    worker never outlives its parent). A task that hits the memory limit is answered
    ``memory_limit`` and the worker then exits (its heap is no longer trustworthy; the parent
    starts a fresh one). Any other crash is answered ``error``: not a verdict on the answer.
    """
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # no "timeout disabled" warnings
    if memory_mb is not None:
        limit_memory(memory_mb)
    bounded(lambda: compare_answers("1", "1", settings), max(soft_s, 30.0))  # warm-up
    watch = _MemoryWatch(memory_mb) if memory_mb is not None else None
    if watch is not None and watch.hit():
        # Already near the cap while idle: every task would end as memory_limit (label 0), a
        # silently wrong table. Refuse to start instead; the parent reports it.
        raise SystemExit(
            f"grader worker: idle peak memory {_peak_address_space() // 2**20} MiB is already near "
            f"grader.memory_mb={memory_mb}; raise grader.memory_mb"
        )
    replies.write(json.dumps({"id": "ready"}) + "\n")
    replies.flush()
    for line in requests:
        task = json.loads(line)
        reply = _run_watched(task, settings, soft_s, watch)
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
        if reply.get("reason") == Reason.MEMORY_LIMIT:
            return


def _run_watched(
    task: dict, settings: ComparisonSettings, soft_s: float, watch: _MemoryWatch | None
) -> dict:
    """`run_task`, with a memory limit hit or a crash turned into its reason."""
    memory_hit = {"id": task["id"], "reason": str(Reason.MEMORY_LIMIT)}
    try:
        if watch is not None:
            watch.armed = True
        reply = run_task(task, settings, soft_s)
    except (MemoryError, MemoryLimitHit):
        signal.setitimer(signal.ITIMER_REAL, 0)  # the watch may have cut `bounded` short
        return memory_hit
    except Exception:  # a crash in our code, math-verify or sympy: logged, reported as error
        logger.exception("grading task %s crashed", task["id"])
        return {"id": task["id"], "reason": str(Reason.ERROR)}
    finally:
        if watch is not None:
            watch.armed = False
    return memory_hit if watch is not None and watch.hit() else reply


def main() -> None:
    """Entry point of a worker process: ``python -m tracefactory.grading.worker SETTINGS_JSON``.

    The protocol uses the process's original stdout; ``sys.stdout`` is pointed at stderr so that
    a stray ``print`` in a dependency cannot corrupt it.
    """
    options = json.loads(sys.argv[1])
    soft_s = options.pop("soft_timeout_s")
    memory_mb = options.pop("memory_mb")
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr
    setup_logging("WARNING")  # the pipeline's one timestamped format, on stderr
    options["mode"] = GraderMode(options["mode"])
    serve(sys.stdin, replies, ComparisonSettings(**options), soft_s, memory_mb)


if __name__ == "__main__":
    main()
