"""Every grading call is bounded: extraction runs in the workers, in linear time; a worker has a
memory limit; a worker that hits it, dies or crashes gives a verdict with its reason, never a
crashed stage, and is replaced; a task whose worker died runs once more on a fresh one."""

import importlib
import io
import json
import os
import signal
import threading
import time

from tracefactory.grading import Grader, Reason
from tracefactory.grading.compare import ComparisonSettings
from tracefactory.grading.pool import WorkerPool
from tracefactory.grading.worker import serve
from tracefactory.schemas import TrajectoryClass

UNCLOSED_BOXES = "</think>" + "\\boxed{" * 20_000


def test_adversarial_response_is_extracted_within_the_timeout(shared_grader: Grader):
    """``no_boxed``, not ``timeout``: extraction finished inside the 5 s limit (the quadratic scan
    this replaces took over 90 s). benchmarks/bench_grader_bounds.py measures how long it takes."""
    timeouts = shared_grader.timeouts
    verdicts = shared_grader.grade_many([(UNCLOSED_BOXES, "3"), (UNCLOSED_BOXES + "}", "3")])
    assert [v.reason for v in verdicts] == [Reason.NO_BOXED, Reason.NO_BOXED]
    assert shared_grader.timeouts == timeouts


def test_extraction_never_runs_in_the_calling_process(monkeypatch, shared_grader: Grader):
    def refuse(*args, **kwargs):
        raise AssertionError("extraction ran in the calling process")

    for module in ("tracefactory.grading.extract", "tracefactory.grading.grader"):
        monkeypatch.setattr(importlib.import_module(module), "extract", refuse, raising=False)
    verdict = shared_grader.grade(r"</think>\boxed{3}", "3", thinking="r1_open")
    assert verdict.reason is Reason.MATCH


def test_memory_limit_gives_a_verdict_and_a_fresh_worker():
    with Grader(workers=1, timeout_s=30.0, memory_mb=400, cache_size=0) as grader:
        grader.grade(r"</think>\boxed{1}", "1")
        verdict = grader.grade(r"</think>\boxed{2^{2^{32}}}", "3")
        # memory_limit, not timeout: the limit ended the task before the 30 s timeout did
        assert (verdict.label, verdict.reason) == (TrajectoryClass.WRONG, Reason.MEMORY_LIMIT)
        assert grader.timeouts == 0
        assert grader.replaced_workers >= 1  # the worker at fault was replaced
        assert grader.grade(r"</think>\boxed{3}", "3").reason is Reason.MATCH


SLOW_COMPARISON = (r"</think>\boxed{10^{10^{9}}}", "3")  # runs until the worker's own alarm


def _kill_workers_holding_a_task(pool: WorkerPool, kills: int) -> threading.Thread:
    """Start a thread that SIGKILLs the pool's first worker as soon as it holds a task, `kills`
    times (each time the fresh worker that replaced the last one), as an outside kill would."""

    def kill() -> None:
        killed: set[int] = set()
        deadline = time.monotonic() + 120
        while len(killed) < kills and time.monotonic() < deadline:
            worker = pool._workers[0]
            if worker.task is not None and worker.process.pid not in killed:
                os.kill(worker.process.pid, signal.SIGKILL)
                killed.add(worker.process.pid)
            time.sleep(0.005)  # polls for the state; the test asserts on verdicts, not time

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    return killer


def test_worker_killed_mid_comparison_gives_the_uninterrupted_verdict():
    """Issue 27 class 10: a worker killed while comparing does not leave an ``error`` verdict
    (which resumes would keep forever); the task runs again on a fresh worker."""
    with Grader(workers=1, timeout_s=3.0, cache_size=0) as grader:
        uninterrupted = grader.grade(*SLOW_COMPARISON).reason
        replaced = grader.replaced_workers
        killer = _kill_workers_holding_a_task(grader._pool, kills=1)
        verdict = grader.grade(*SLOW_COMPARISON)
        killer.join()
        assert verdict.reason is uninterrupted is Reason.TIMEOUT  # the soft alarm's verdict
        assert grader.replaced_workers == replaced + 1  # the killed worker was replaced
        assert grader.errors == 0
        assert grader.grade(r"</think>\boxed{3}", "3").reason is Reason.MATCH


def test_worker_killed_on_every_try_is_an_error_not_a_wrong_answer():
    with Grader(workers=1, timeout_s=3.0, cache_size=0) as grader:
        grader.grade(r"</think>\boxed{1}", "1")
        killer = _kill_workers_holding_a_task(grader._pool, kills=2)
        verdict = grader.grade(*SLOW_COMPARISON)
        killer.join()
        assert (verdict.label, verdict.reason) == (None, Reason.ERROR)
        assert verdict.to_dict()["label"] is None
        assert grader.replaced_workers >= 2  # both workers at fault were replaced
        assert grader.errors == 1
        assert grader.grade(r"</think>\boxed{3}", "3").reason is Reason.MATCH


def test_crash_inside_a_task_is_reported_as_error_and_the_worker_goes_on():
    tasks = [
        {"id": 0, "kind": "compare", "gold": "3"},  # no answer: the comparison raises KeyError
        {"id": 1, "kind": "compare", "gold": "3", "answer": "3"},
    ]
    replies = io.StringIO()
    requests = io.StringIO("".join(json.dumps(task) + "\n" for task in tasks))
    serve(requests, replies, ComparisonSettings(), soft_s=5.0)
    lines = [json.loads(line) for line in replies.getvalue().splitlines()]
    assert [line["reason"] for line in lines[1:]] == ["error", "match"]


def test_failed_extraction_batch_is_retried_one_response_at_a_time():
    """A batch lost with its worker says nothing about its responses: each is extracted again."""
    with Grader(workers=1, timeout_s=1.0, cache_size=0) as grader:
        grader.grade(r"</think>\boxed{1}", "1")
        os.kill(grader._pool._workers[0].process.pid, signal.SIGSTOP)
        pairs = [(rf"</think>\boxed{{{n}}}", str(n)) for n in range(3)]
        assert [v.reason for v in grader.grade_many(pairs)] == [Reason.MATCH] * 3
        assert grader.replaced_workers >= 1  # the worker at fault was replaced


def test_a_worker_already_near_its_memory_limit_refuses_to_start():
    """Otherwise every task would end as memory_limit (label 0): a silently wrong table."""
    import json
    import subprocess
    import sys

    options = {**vars(ComparisonSettings()), "soft_timeout_s": 5.0, "memory_mb": 512}
    script = (
        "import sys, tracefactory.grading.worker as w;"
        "w._peak_address_space = lambda: 10**12;"  # as if the idle worker were huge
        "sys.argv = ['worker', sys.argv[1]]; w.main()"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, json.dumps(options)],
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "raise grader.memory_mb" in run.stderr
    assert '"ready"' not in run.stdout
