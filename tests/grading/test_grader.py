"""The process-pool Grader: hard timeouts, worker replacement, threads, Ray actors, cache, CLI."""

import io
import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tracefactory.errors import ConfigError
from tracefactory.grading import Grader, Reason, grade
from tracefactory.grading.cli import grade_cli
from tracefactory.schemas import TrajectoryClass

# (response, gold, expected label): a mix of every verdict kind that needs no timeout.
CASES = [
    (r"</think>\boxed{016}", "16", TrajectoryClass.CORRECT),
    (r"</think>\boxed{17}", "16", TrajectoryClass.WRONG),
    (r"</think>\boxed{\frac{1}{2}}", "0.5", TrajectoryClass.CORRECT),
    (r"</think>\boxed{(1,2)}", "(1,2]", TrajectoryClass.WRONG),
    (r"</think>\boxed{x=3}", "3", TrajectoryClass.CORRECT),
    (r"thinking \boxed{3}", "3", TrajectoryClass.INCOMPLETE),
    (r"</think>the answer is 3", "3", TrajectoryClass.WRONG),
    (r"</think>\boxed{3 \pm 1}", "2, 4", TrajectoryClass.CORRECT),
]
PATHOLOGICAL = r"</think>\boxed{2^{2^{2^{100}}}}"


def _expected_labels(count: int) -> tuple[list[tuple[str, str]], list[TrajectoryClass]]:
    """`count` (response, gold) pairs cycling through CASES, and their expected labels."""
    cases = [CASES[index % len(CASES)] for index in range(count)]
    return [(response, gold) for response, gold, _ in cases], [label for _, _, label in cases]


def test_pathological_answer_times_out_and_pool_recovers():
    """How soon the timeout verdict comes is measured by benchmarks/bench_grader_bounds.py."""
    with Grader(workers=2, timeout_s=1.5, cache_size=0) as grader:
        grader.grade_many([(r"</think>\boxed{1}", "1")])  # workers started and warm
        verdict = grader.grade(PATHOLOGICAL, "16")
        assert (verdict.label, verdict.reason) == (TrajectoryClass.WRONG, Reason.TIMEOUT)
        assert grader.timeouts == 1
        pairs, labels = _expected_labels(100)
        # one call per pair and no cache: every pair really goes through a worker
        assert [grader.grade(response, gold).label for response, gold in pairs] == labels


def test_stuck_worker_is_killed_and_replaced():
    """A SIGSTOPped worker cannot run its own alarm: only the parent's hard kill can end it."""
    with Grader(workers=1, timeout_s=1.0, cache_size=0) as grader:
        grader.grade(r"</think>\boxed{1}", "1")
        os.kill(grader._pool._workers[0].process.pid, signal.SIGSTOP)
        verdict = grader.grade(r"</think>\boxed{2}", "2")
        assert verdict.reason is Reason.TIMEOUT
        assert grader.replaced_workers == 1  # the parent's hard kill ended it
        assert grader.grade(r"</think>\boxed{2}", "2").reason is Reason.MATCH


def test_bad_grader_field_is_one_config_error_line_naming_it():
    with pytest.raises(ConfigError, match=r"^grading\.workers = 0: .*greater than or equal to 1$"):
        Grader(workers=0)


def test_dead_idle_worker_is_replaced_without_losing_the_task():
    with Grader(workers=1, timeout_s=5.0, cache_size=0) as grader:
        grader.grade(r"</think>\boxed{1}", "1")
        worker = grader._pool._workers[0].process
        worker.kill()
        worker.wait()
        assert grader.grade(r"</think>\boxed{2}", "2").reason is Reason.MATCH
        assert grader.replaced_workers == 1


def test_four_threads_get_the_main_thread_verdicts(shared_grader: Grader):
    pairs, labels = _expected_labels(40)
    in_main = shared_grader.grade_many(pairs, thinking="r1_open")
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: shared_grader.grade_many(pairs, thinking="r1_open"), range(4))
        )
    assert [v.label for v in in_main] == labels
    assert all(result == in_main for result in results)


def test_grading_inside_a_ray_actor_matches_the_main_thread(shared_grader: Grader, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    pairs, _ = _expected_labels(len(CASES))

    @ray.remote(num_cpus=0.5)
    class GradingActor:
        def __init__(self) -> None:
            self.grader = Grader(workers=1, timeout_s=5.0)

        def grade_many(self, pairs: list[tuple[str, str]]) -> list[dict]:
            return [v.to_dict() for v in self.grader.grade_many(pairs)]

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        actor = GradingActor.remote()
        in_actor = ray.get(actor.grade_many.remote(pairs), timeout=120)
    finally:
        ray.shutdown()
    in_main = [v.to_dict() for v in shared_grader.grade_many(pairs, thinking="r1_open")]
    assert in_actor == in_main


def test_cache_answers_repeated_comparisons_by_gold_and_answer():
    with Grader(workers=1, timeout_s=5.0) as grader:
        first = grader.grade(r"</think>\boxed{016}", "16")
        assert grader._cache[("16", "016", grader.version)] is Reason.MATCH
        grader._cache[("16", "016", grader.version)] = Reason.MISMATCH  # what a cache hit returns
        other_response = grader.grade(r"reasoning </think> so \boxed{016}.", "16")
        assert (first.reason, other_response.reason) == (Reason.MATCH, Reason.MISMATCH)


def test_grade_function_is_bounded_and_defaults_to_r1_open():
    assert grade(r"no think end \boxed{3}", "3").reason is Reason.NO_THINK_END
    assert grade(r"</think>\boxed{3}", "3", truncated=True).reason is Reason.TRUNCATED
    assert grade(r"x</think>\boxed{3}", "3").label is TrajectoryClass.CORRECT


def test_bad_arguments_raise_config_error(shared_grader: Grader):
    with pytest.raises(ConfigError, match="thinking='think'"):
        shared_grader.grade_many([("a", "b")], thinking="think")
    with pytest.raises(ConfigError, match="2 flags for 1 pairs"):
        shared_grader.grade_many([("a", "b")], truncated=[False, True])
    with pytest.raises(ConfigError, match="either --gold and --response"):
        grade_cli(gold="1", response=None, pairs_path=None)


def test_cli_prints_one_json_verdict_per_pair(tmp_path: Path):
    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {"gold": "16", "response": r"</think>\boxed{016}"},
        {"gold": "16", "response": r"</think>\boxed{16}", "finish_reason": "length"},
        {"gold": "16", "response": "<think>no end"},
    ]
    pairs.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = io.StringIO()
    assert grade_cli(gold=None, response=None, pairs_path=pairs, thinking="r1", output=output) == 3
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    assert lines == [
        {"label": 1, "reason": "match", "answer": "016"},
        {"label": 2, "reason": "truncated", "answer": None},
        {"label": 2, "reason": "no_think_end", "answer": None},
    ]


def test_missing_response_or_gold_is_an_error_not_the_text_none(shared_grader: Grader):
    with pytest.raises(ConfigError, match="pair 1: response is NoneType"):
        shared_grader.grade_many([(r"\boxed{3}", "3"), (None, "None")])
    with pytest.raises(ConfigError, match="pair 0: gold is NoneType"):
        shared_grader.grade_many([(r"\boxed{None}", None)])
    with pytest.raises(ConfigError, match="response is NoneType"):
        grade(None, "None")


def test_nested_boxes_are_not_credited_through_the_grader(shared_grader: Grader):
    hedges = [r"\boxed{1 \boxed{3}}", r"\boxed{3 \boxed{3}}", r"\boxed{\boxed{1} \boxed{3}}"]
    for response in hedges:
        verdict = shared_grader.grade(response, "3")
        assert (verdict.label, verdict.reason) == (TrajectoryClass.WRONG, Reason.NESTED_BOXED), (
            response
        )
    assert shared_grader.grade(r"\boxed{\boxed{3}}", "3").reason is Reason.MATCH


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from tracefactory.cli import main; main()", "grade", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b'{"gold": "1", "response": "caf\xe9"}\n', (), "pairs.jsonl:1: not UTF-8 (byte 0xe9"),
        (b'{"gold": "1", "response": null}\n', (), "pairs.jsonl:1: 'response' is null"),
        (b'{"gold": null, "response": "x"}\n', (), "pairs.jsonl:1: 'gold' is null"),
        (b'{"gold": "1", "response": "x"}\n', ("--timeout-s", "0"), "--timeout-s 0.0: input"),
        (b'{"gold": "1", "response": "x"}\n', ("--workers", "0"), "--workers 0: input"),
    ],
)
def test_cli_bad_input_is_one_clear_line_and_a_failing_exit(
    tmp_path: Path, content: bytes, args: tuple[str, ...], message: str
):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes(content)
    result = _run_cli("--pairs", str(pairs), *args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
