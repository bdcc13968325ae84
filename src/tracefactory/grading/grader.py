"""The process-pool `Grader`: extraction in the caller, comparison in bounded worker processes.

Why processes: math-verify's timeout is a SIGALRM, which works only in a process's main thread (it
fails inside threads and threaded Ray actors), and some comparisons hang where no signal reaches.
Each worker is a fresh interpreter (`_Worker` says why not multiprocessing) running
`worker.serve`; each task has a hard deadline, after which the worker is killed and replaced and
the verdict is ``timeout``. Verdicts are cached by (gold, answer, grader version).

Usage::

    with Grader(GraderConfig(workers=2, timeout_s=5.0)) as grader:
        verdicts = grader.grade_many([(response, gold), ...])
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from importlib.metadata import version as package_version
from pathlib import Path

from pydantic import Field

import tracefactory
from tracefactory.config import Section
from tracefactory.errors import ConfigError
from tracefactory.grading.compare import ComparisonSettings
from tracefactory.grading.extract import ThinkingFormat, extract
from tracefactory.grading.verdict import GRADER_VERSION, Reason, Verdict

logger = logging.getLogger(__name__)

_WORKER_START_TIMEOUT_S = 120.0  # a spawned worker imports sympy + math-verify (~1-3 s idle)
_SOFT_TIMEOUT_FRACTION = 0.8  # the worker's own alarm fires first, sparing a respawn


class GraderConfig(Section):
    """Grader settings (the ``grading`` section of params.yaml)."""

    workers: int = Field(2, ge=1)  # worker processes comparing answers in parallel
    timeout_s: float = Field(5.0, gt=0)  # hard limit per comparison, seconds; then kill + timeout
    thinking: ThinkingFormat = ThinkingFormat.R1_OPEN  # r1_open | r1 | sky_t1 | none | auto
    float_rounding: int = Field(6, ge=0)  # decimal places floats are rounded to (math-verify)
    numeric_precision: int = Field(15, ge=1)  # significant digits of numeric equality (math-verify)
    cache_size: int = Field(200_000, ge=0)  # verdicts kept in memory, LRU; 0 disables the cache


class _Worker:
    """One worker: a fresh interpreter running ``python -m tracefactory.grading.worker``.

    A new interpreter, not a multiprocessing child: `spawn`/`forkserver` children re-import the
    parent's ``__main__`` (a script without a main guard, a Ray worker's entry module), which fails
    or recurses; fork is unsafe in multi-threaded processes such as Ray actors. A pipe per
    direction carries JSON lines; the worker exits when its stdin closes.
    """

    def __init__(self, settings: ComparisonSettings, soft_timeout_s: float) -> None:
        options = json.dumps({**dataclasses.asdict(settings), "soft_timeout_s": soft_timeout_s})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tracefactory.grading.worker", options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": _package_search_path()},
            text=False,
        )
        os.set_blocking(self.process.stdout.fileno(), False)
        self._buffer = b""
        self.started_at = time.monotonic()
        self.ready = False
        self.task: tuple[int, float] | None = None  # (task id, hard deadline)

    def fileno(self) -> int:
        return self.process.stdout.fileno()

    def send(self, task_id: int, gold: str, answer: str, timeout_s: float) -> None:
        line = json.dumps({"id": task_id, "gold": gold, "answer": answer}) + "\n"
        self.process.stdin.write(line.encode("utf-8"))
        self.process.stdin.flush()
        self.task = (task_id, time.monotonic() + timeout_s)

    def messages(self) -> list[dict]:
        """Complete JSON lines received so far. Raises EOFError once the worker has exited."""
        try:
            chunk = os.read(self.fileno(), 1 << 16)
        except BlockingIOError:
            chunk = None
        if chunk == b"":
            raise EOFError(f"grader worker pid {self.process.pid} exited")
        self._buffer += chunk or b""
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self._close_pipes()

    def stop(self) -> None:
        try:
            self.process.stdin.close()  # end of input: the worker's loop ends
            self.process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(timeout=10)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass


def _package_search_path() -> str:
    """PYTHONPATH for workers: the folder holding `tracefactory`, then the inherited value."""
    package_root = str(Path(tracefactory.__file__).resolve().parent.parent)
    inherited = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join(p for p in (package_root, inherited) if p)


class Grader:
    """Grades (response, gold) pairs with a pool of worker processes.

    Safe to share between threads (calls are serialized; each call uses every worker) and usable
    inside Ray actors. Use as a context manager, or call `close()`.

    Args:
        config: pool size, hard timeout, thinking format and math-verify precision.
        **fields: `GraderConfig` fields overriding `config`'s, e.g. ``Grader(workers=2)``.

    Raises:
        pydantic.ValidationError: a field has a bad value (names the field).
    """

    def __init__(self, config: GraderConfig | None = None, **fields: object) -> None:
        base = config.model_dump() if config is not None else {}
        self.config = GraderConfig.model_validate({**base, **fields}) if fields else config
        self.config = self.config or GraderConfig()
        self.settings = ComparisonSettings(
            float_rounding=self.config.float_rounding,
            numeric_precision=self.config.numeric_precision,
        )
        self.version = (
            f"{GRADER_VERSION}+math-verify-{package_version('math-verify')}"
            f"+fr{self.settings.float_rounding}+np{self.settings.numeric_precision}"
        )
        self._cache: OrderedDict[tuple[str, str, str], Reason] = OrderedDict()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = [self._new_worker() for _ in range(self.config.workers)]
        self.timeouts = 0  # comparisons that hit the hard or soft limit
        self.replaced_workers = 0

    def _new_worker(self) -> _Worker:
        return _Worker(self.settings, self.config.timeout_s * _SOFT_TIMEOUT_FRACTION)

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker process (idempotent)."""
        with self._lock:
            for worker in self._workers:
                worker.stop()
            self._workers = []

    def grade(
        self, response: str, gold: str, *, truncated: bool = False, thinking: str | None = None
    ) -> Verdict:
        """Grade one response; see `grade_many`."""
        return self.grade_many([(response, gold)], truncated=[truncated], thinking=thinking)[0]

    def grade_many(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        truncated: Sequence[bool] | None = None,
        thinking: str | None = None,
    ) -> list[Verdict]:
        """Grade (response, gold) pairs, in order.

        Args:
            pairs: (response, gold answer) tuples.
            truncated: per pair, whether generation stopped at the length cap; default all False.
            thinking: a `ThinkingFormat` value overriding the config's for this call.

        Returns:
            One `Verdict` per pair.

        Raises:
            ConfigError: `truncated` has the wrong length, or `thinking` is not a format.
            RuntimeError: the grader is closed, or a worker process failed to start.
        """
        if truncated is not None and len(truncated) != len(pairs):
            raise ConfigError(f"truncated has {len(truncated)} flags for {len(pairs)} pairs")
        try:
            fmt = ThinkingFormat(thinking) if thinking else self.config.thinking
        except ValueError as error:
            allowed = [f.value for f in ThinkingFormat]
            raise ConfigError(f"thinking={thinking!r} is not one of {allowed}") from error
        extractions = [
            extract(response, thinking=fmt, truncated=bool(truncated and truncated[i]))
            for i, (response, _gold) in enumerate(pairs)
        ]
        to_compare = {
            (gold, item.answer)
            for item, (_r, gold) in zip(extractions, pairs, strict=True)
            if item.reason is None
        }
        with self._lock:
            reasons = self._compare_all(sorted(to_compare))
        return [
            Verdict.of(item.reason or reasons[(gold, item.answer)], item.answer)
            for item, (_r, gold) in zip(extractions, pairs, strict=True)
        ]

    def _compare_all(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Reason]:
        """Reasons for (gold, answer) keys: cached ones, then the rest through the pool."""
        if not self._workers:
            raise RuntimeError("Grader is closed; create a new one")
        reasons: dict[tuple[str, str], Reason] = {}
        pending: list[tuple[str, str]] = []
        for gold, answer in keys:
            cached = self._cache.get((gold, answer, self.version))
            if cached is None:
                pending.append((gold, answer))
            else:
                self._cache.move_to_end((gold, answer, self.version))
                reasons[(gold, answer)] = cached
        reasons.update(self._run_pool(pending))
        for (gold, answer), reason in reasons.items():
            self._remember((gold, answer, self.version), reason)
        return reasons

    def _remember(self, key: tuple[str, str, str], reason: Reason) -> None:
        if self.config.cache_size == 0:
            return
        self._cache[key] = reason
        self._cache.move_to_end(key)
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)

    def _run_pool(self, pending: list[tuple[str, str]]) -> dict[tuple[str, str], Reason]:
        """Dispatch pending comparisons to idle workers until all are answered."""
        results: dict[tuple[str, str], Reason] = {}
        next_task = 0
        while len(results) < len(pending):
            for index, worker in enumerate(self._workers):
                if worker.ready and worker.task is None and next_task < len(pending):
                    gold, answer = pending[next_task]
                    try:
                        worker.send(next_task, gold, answer, self.config.timeout_s)
                    except OSError:  # died while idle: replace it, the task waits for the next
                        self._replace(index, pending, results, why="worker process died")
                        continue
                    next_task += 1
            self._wait_and_collect(pending, results)
        return results

    def _wait_and_collect(
        self, pending: list[tuple[str, str]], results: dict[tuple[str, str], Reason]
    ) -> None:
        """Wait for the next message or deadline; record results; replace dead or stuck workers."""
        now = time.monotonic()
        deadlines = [w.task[1] for w in self._workers if w.task is not None]
        deadlines += [w.started_at + _WORKER_START_TIMEOUT_S for w in self._workers if not w.ready]
        select.select(self._workers, [], [], max(0.0, min(deadlines, default=now + 1.0) - now))
        for index, worker in enumerate(self._workers):
            try:
                for message in worker.messages():
                    if message["id"] == "ready":
                        worker.ready = True
                        continue
                    results[pending[message["id"]]] = Reason(message["reason"])
                    self.timeouts += message["reason"] == Reason.TIMEOUT
                    worker.task = None
            except (EOFError, OSError) as error:
                if not worker.ready:
                    raise RuntimeError(
                        "grader worker exited while starting (is math-verify importable in a "
                        "spawned process?)"
                    ) from error
                self._replace(index, pending, results, why="worker process died")
                continue
            self._enforce_deadline(index, pending, results)

    def _enforce_deadline(
        self, index: int, pending: list[tuple[str, str]], results: dict[tuple[str, str], Reason]
    ) -> None:
        worker = self._workers[index]
        now = time.monotonic()
        if worker.task is not None and now >= worker.task[1]:
            self._replace(index, pending, results, why="comparison passed the hard timeout")
        elif not worker.ready and now >= worker.started_at + _WORKER_START_TIMEOUT_S:
            raise RuntimeError(
                f"grader worker did not start within {_WORKER_START_TIMEOUT_S:.0f} s "
                "(is math-verify importable in a spawned process?)"
            )

    def _replace(
        self,
        index: int,
        pending: list[tuple[str, str]],
        results: dict[tuple[str, str], Reason],
        why: str,
    ) -> None:
        """Kill worker `index` and start a fresh one; its task (if any) becomes ``timeout``."""
        worker = self._workers[index]
        if worker.task is not None:
            results[pending[worker.task[0]]] = Reason.TIMEOUT
            self.timeouts += 1
        logger.warning("replacing grader worker pid %s: %s", worker.process.pid, why)
        worker.kill()
        self._workers[index] = self._new_worker()
        self.replaced_workers += 1


_default_grader: Grader | None = None
_default_lock = threading.Lock()


def _close_default_grader() -> None:
    if _default_grader is not None:
        _default_grader.close()


def grade(
    response: str,
    gold: str,
    *,
    thinking: ThinkingFormat | str = ThinkingFormat.R1_OPEN,
    truncated: bool = False,
) -> Verdict:
    """Grade one response against its gold answer, bounded by a hard timeout.

    Extraction runs here; the comparison runs in a shared one-worker `Grader` started on first use
    (about a second) and stopped at exit, so even a single call never runs math-verify unbounded in
    this process or thread. Stages that grade many pairs should own a `Grader`.

    Args:
        response: the generated text.
        gold: the gold answer (LaTeX, without ``\\boxed``).
        thinking: where the thinking section is (`ThinkingFormat` value).
        truncated: the generator stopped at the length cap.

    Returns:
        The `Verdict`.
    """
    global _default_grader
    thinking = ThinkingFormat(thinking)
    extraction = extract(response, thinking=thinking, truncated=truncated)
    if extraction.reason is not None:
        return Verdict.of(extraction.reason, extraction.answer)
    with _default_lock:
        if _default_grader is None:
            _default_grader = Grader(GraderConfig(workers=1))
            atexit.register(_close_default_grader)
    return _default_grader.grade(response, gold, thinking=thinking, truncated=truncated)
