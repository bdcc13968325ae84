"""Grader worker process: ``python -m tracefactory.grading.worker SETTINGS_JSON``.

Started by `Grader` (grader.py); reads comparison tasks as JSON lines on stdin and answers each
with its reason on stdout. Runs every task in its main thread, so `compare_bounded`'s SIGALRM works.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import IO

from tracefactory.grading.compare import ComparisonSettings, compare_bounded
from tracefactory.grading.verdict import Reason
from tracefactory.stats import setup_logging

logger = logging.getLogger(__name__)


def serve(requests: IO[str], replies: IO[str], settings: ComparisonSettings, soft_s: float) -> None:
    """Worker loop over JSON lines: ``{"id", "gold", "answer"}`` in, ``{"id", "reason"}`` out.

    Sends ``{"id": "ready"}`` once math-verify is imported and warm, so the parent never starts a
    task's hard deadline while a fresh worker is still importing. End of input ends the loop (so a
    worker never outlives its parent).
    """
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # no "timeout disabled" warnings
    compare_bounded("1", "1", settings, soft_timeout_s=max(soft_s, 30.0))  # warm-up
    replies.write(json.dumps({"id": "ready"}) + "\n")
    replies.flush()
    for line in requests:
        task = json.loads(line)
        try:
            reason = compare_bounded(task["gold"], task["answer"], settings, soft_s)
        except Exception:  # a crash in math-verify/sympy: logged, reported as unparseable
            logger.exception("comparison crashed for task %s", task["id"])
            reason = Reason.UNPARSEABLE
        replies.write(json.dumps({"id": task["id"], "reason": str(reason)}) + "\n")
        replies.flush()


def main() -> None:
    """Entry point of a worker process: ``python -m tracefactory.grading.compare SETTINGS_JSON``.

    The protocol uses the process's original stdout; ``sys.stdout`` is pointed at stderr so that
    a stray ``print`` in a dependency cannot corrupt it.
    """
    options = json.loads(sys.argv[1])
    soft_s = options.pop("soft_timeout_s")
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr
    setup_logging("WARNING")  # the pipeline's one timestamped format, on stderr
    serve(sys.stdin, replies, ComparisonSettings(**options), soft_s)


if __name__ == "__main__":
    main()
