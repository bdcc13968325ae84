"""The grader's pool of worker processes: dispatch JSON tasks, enforce deadlines, replace workers.

Each worker is a fresh interpreter (`_Worker` says why not multiprocessing) running
`worker.serve` under an address-space limit. Each task has a hard deadline, after which the worker
is killed and replaced and the task's reply is ``timeout``. A worker that answers ``memory_limit``
exits, and is replaced at once. One that exits holding a task (killed from outside, the system's
out-of-memory killer, a crash in native code) is replaced and its task is run once more on a fresh
worker: nothing says the answer was at fault, and an ``error`` verdict would stay in the table
forever (resumes keep finished shards), unlike an uninterrupted run's. A task whose worker dies
on both tries is answered ``error``: a death that repeats is the task's own, and retrying more
would only spend workers on it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import select
import subprocess
import sys
import time
from collections import Counter, deque
from pathlib import Path

import tracefactory
from tracefactory.errors import GraderError
from tracefactory.grading.compare import ComparisonSettings
from tracefactory.grading.verdict import Reason

logger = logging.getLogger(__name__)

_WORKER_START_TIMEOUT_S = 120.0  # a spawned worker imports sympy + math-verify (~1-3 s idle)
_SOFT_TIMEOUT_FRACTION = 0.8  # the worker's own alarm fires first, sparing a respawn
_TRIES_PER_TASK = 2  # a task whose worker died is run again once on a fresh worker


@dataclasses.dataclass(frozen=True)
class PoolSettings:
    """What every worker of a pool is started with.

    Attributes:
        comparison: math-verify settings.
        timeout_s: hard limit per task, seconds (the worker's own alarm fires at 80% of it).
        memory_mb: address-space limit per worker process, MiB.
    """

    comparison: ComparisonSettings
    timeout_s: float
    memory_mb: int


class _Worker:
    """One worker: a fresh interpreter running ``python -m tracefactory.grading.worker``.

    A new interpreter, not a multiprocessing child: `spawn`/`forkserver` children re-import the
    parent's ``__main__`` (a script without a main guard, a Ray worker's entry module), which fails
    or recurses; fork is unsafe in multi-threaded processes such as Ray actors. A pipe per
    direction carries JSON lines; the worker exits when its stdin closes.
    """

    def __init__(self, settings: PoolSettings) -> None:
        options = json.dumps(
            {
                **dataclasses.asdict(settings.comparison),
                "soft_timeout_s": settings.timeout_s * _SOFT_TIMEOUT_FRACTION,
                "memory_mb": settings.memory_mb,
            }
        )
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
        self.task: tuple[int, float] | None = None  # (task index, hard deadline)

    def fileno(self) -> int:
        return self.process.stdout.fileno()

    def send(self, index: int, task: dict, timeout_s: float) -> None:
        line = json.dumps({**task, "id": index}) + "\n"
        self.process.stdin.write(line.encode("utf-8"))
        self.process.stdin.flush()
        self.task = (index, time.monotonic() + timeout_s)

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


class WorkerPool:
    """A fixed number of bounded worker processes answering JSON tasks.

    Not thread-safe: the `Grader` serializes calls. Counters: ``timeouts`` (tasks that hit the
    soft or hard limit), ``errors`` (tasks whose worker crashed or died), ``replaced_workers``.
    """

    def __init__(self, workers: int, settings: PoolSettings) -> None:
        self.settings = settings
        self.timeouts = 0
        self.errors = 0
        self.replaced_workers = 0
        self._workers: list[_Worker] = [_Worker(settings) for _ in range(workers)]

    @property
    def closed(self) -> bool:
        return not self._workers

    def close(self) -> None:
        """Stop every worker process (idempotent)."""
        for worker in self._workers:
            worker.stop()
        self._workers = []

    def run(self, tasks: list[dict]) -> list[dict]:
        """The reply to every task, in order; ``{"reason": ...}`` alone for a task whose worker
        was killed at its deadline (``timeout``) or died holding it on every try (``error``)."""
        if self.closed:
            raise RuntimeError("Grader is closed; create a new one")
        replies: dict[int, dict] = {}
        queue = deque(range(len(tasks)))
        deaths: Counter[int] = Counter()
        while len(replies) < len(tasks):
            for index, worker in enumerate(self._workers):
                if worker.ready and worker.task is None and queue:
                    try:
                        worker.send(queue[0], tasks[queue[0]], self.settings.timeout_s)
                    except (OSError, ValueError):  # died while idle (pipe broken or closed):
                        # replace it; the task waits for the next idle worker
                        self._replace(index, why="worker process died while idle")
                        continue
                    queue.popleft()
            for task in self._wait_and_collect(replies):
                deaths[task] += 1
                if deaths[task] < _TRIES_PER_TASK:
                    logger.warning("grader task %d: its worker died; running it again", task)
                    queue.appendleft(task)
                else:
                    logger.warning("grader task %d: its worker died on every try; error", task)
                    replies[task] = {"reason": str(Reason.ERROR)}
        reasons = [reply.get("reason") for reply in replies.values()]
        self.timeouts += reasons.count(Reason.TIMEOUT)
        self.errors += reasons.count(Reason.ERROR)
        return [replies[index] for index in range(len(tasks))]

    def _wait_and_collect(self, replies: dict[int, dict]) -> list[int]:
        """Wait for the next message or deadline; record replies; replace dead or stuck workers.
        Returns the tasks whose worker died holding them (no reply says why)."""
        orphaned = []
        now = time.monotonic()
        deadlines = [w.task[1] for w in self._workers if w.task is not None]
        deadlines += [w.started_at + _WORKER_START_TIMEOUT_S for w in self._workers if not w.ready]
        select.select(self._workers, [], [], max(0.0, min(deadlines, default=now + 1.0) - now))
        for index, worker in enumerate(self._workers):
            try:
                messages = worker.messages()
            except (EOFError, OSError) as error:
                if not worker.ready:
                    raise GraderError(
                        "grader worker exited while starting (is math-verify importable in a "
                        "spawned process, and is the memory limit above its ~100 MB?)"
                    ) from error
                task = self._replace(index, why="worker process died")
                if task is not None:
                    orphaned.append(task)
                continue
            for message in messages:
                if message["id"] == "ready":
                    worker.ready = True
                    continue
                replies[message.pop("id")] = message
                worker.task = None
                if message.get("reason") == Reason.MEMORY_LIMIT:  # the worker exits after saying so
                    self._replace(index, why="it hit its memory limit")
                    break
            else:
                self._enforce_deadline(index, replies)
        return orphaned

    def _enforce_deadline(self, index: int, replies: dict[int, dict]) -> None:
        worker = self._workers[index]
        now = time.monotonic()
        if worker.task is not None and now >= worker.task[1]:
            task = self._replace(index, why="task passed the hard timeout")
            replies[task] = {"reason": str(Reason.TIMEOUT)}
        elif not worker.ready and now >= worker.started_at + _WORKER_START_TIMEOUT_S:
            raise GraderError(
                f"grader worker did not start within {_WORKER_START_TIMEOUT_S:.0f} s "
                "(is math-verify importable in a spawned process?)"
            )

    def _replace(self, index: int, why: str) -> int | None:
        """Kill worker `index` and start a fresh one; returns the task it held, if any."""
        worker = self._workers[index]
        task = None if worker.task is None else worker.task[0]
        logger.log(
            logging.INFO if task is None else logging.WARNING,
            "replacing grader worker pid %s (task %s): %s",
            worker.process.pid,
            task,
            why,
        )
        worker.kill()
        self._workers[index] = _Worker(self.settings)
        self.replaced_workers += 1
        return task
