"""The `Grader`: extraction and comparison in a pool of bounded worker processes, with a cache.

Why processes: math-verify's timeout is a SIGALRM, which works only in a process's main thread (it
fails inside threads and threaded Ray actors), and some comparisons hang where no signal reaches.
Why extraction too: the response is untrusted and unbounded, so nothing of it is read in the
caller. A call runs in two rounds through the pool (pool.py): every response is extracted, then
every (gold, answer) pair not in the cache is compared. Verdicts are cached by (gold, answer,
grader version), so the 56 roll-outs of a problem that box the same answer cost one comparison.

Usage::

    with Grader(GraderConfig(workers=2, timeout_s=5.0)) as grader:
        verdicts = grader.grade_many([(response, gold), ...])
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from importlib.metadata import version as package_version

from pydantic import Field, ValidationError

from tracefactory.config import Section, one_line_validation_error
from tracefactory.errors import ConfigError
from tracefactory.grading.compare import ComparisonSettings
from tracefactory.grading.extract import ThinkingFormat
from tracefactory.grading.pool import PoolSettings, WorkerPool
from tracefactory.grading.verdict import GRADER_VERSION, Reason, Verdict

logger = logging.getLogger(__name__)

_BATCH_RESPONSES = 64  # responses per extraction task
_BATCH_CHARS = 1 << 20  # characters per extraction task (a longer response goes alone)


class GraderConfig(Section):
    """Grader settings (the ``grading`` section of params.yaml)."""

    workers: int = Field(2, ge=1)
    """worker processes grading in parallel"""
    timeout_s: float = Field(5.0, gt=0)
    """hard limit per extraction or comparison, seconds"""
    memory_mb: int = Field(512, ge=256)
    """address-space limit per worker process, MiB (idle ~85)"""
    thinking: ThinkingFormat = ThinkingFormat.R1_OPEN
    """r1_open | r1 | sky_t1 | none | auto"""
    float_rounding: int = Field(6, ge=0)
    """decimal places floats are rounded to (math-verify)"""
    numeric_precision: int = Field(15, ge=1)
    """significant digits of numeric equality (math-verify)"""
    cache_size: int = Field(200_000, ge=0)
    """verdicts kept in memory, LRU; 0 disables the cache"""


class Grader:
    """Grades (response, gold) pairs with a pool of worker processes.

    Safe to share between threads (calls are serialized; each call uses every worker) and usable
    inside Ray actors. Use as a context manager, or call `close()`.

    Args:
        config: pool size, hard timeout, memory limit, thinking format and math-verify precision.
        **fields: `GraderConfig` fields overriding `config`'s, e.g. ``Grader(workers=2)``.

    Raises:
        ConfigError: a field has a bad value (one line naming the field and why).
    """

    def __init__(self, config: GraderConfig | None = None, **fields: object) -> None:
        base = config.model_dump() if config is not None else {}
        try:
            self.config = GraderConfig.model_validate({**base, **fields}) if fields else config
        except ValidationError as e:
            raise ConfigError(one_line_validation_error("grading", e)) from e
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
        pool_settings = PoolSettings(self.settings, self.config.timeout_s, self.config.memory_mb)
        self._pool = WorkerPool(self.config.workers, pool_settings)

    @property
    def timeouts(self) -> int:
        """Tasks that hit the soft or hard time limit."""
        return self._pool.timeouts

    @property
    def errors(self) -> int:
        """Tasks answered ``error``: the grader crashed, or its worker died, not the answer."""
        return self._pool.errors

    @property
    def replaced_workers(self) -> int:
        """Worker processes killed or lost and started again."""
        return self._pool.replaced_workers

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker process (idempotent)."""
        with self._lock:
            self._pool.close()

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
            pairs: (response, gold answer) tuples, both strings.
            truncated: per pair, whether generation stopped at the length cap; default all False.
            thinking: a `ThinkingFormat` value overriding the config's for this call.

        Returns:
            One `Verdict` per pair.

        Raises:
            ConfigError: `truncated` has the wrong length, `thinking` is not a format, or a
                response or gold answer is not a string (a missing response is not a verdict).
            RuntimeError: the grader is closed, or a worker process failed to start.
        """
        if truncated is not None and len(truncated) != len(pairs):
            raise ConfigError(f"truncated has {len(truncated)} flags for {len(pairs)} pairs")
        try:
            fmt = ThinkingFormat(thinking) if thinking else self.config.thinking
        except ValueError as error:
            allowed = [f.value for f in ThinkingFormat]
            raise ConfigError(f"thinking={thinking!r} is not one of {allowed}") from error
        _require_strings(pairs)
        flags = [bool(truncated and truncated[i]) for i in range(len(pairs))]
        with self._lock:
            extractions = self._extract_all([r for r, _ in pairs], flags, fmt)
            to_compare = {
                (gold, item["answer"])
                for item, (_r, gold) in zip(extractions, pairs, strict=True)
                if item["reason"] is None
            }
            reasons = self._compare_all(sorted(to_compare))
        return [
            Verdict.of(
                Reason(item["reason"]) if item["reason"] else reasons[(gold, item["answer"])],
                item.get("answer"),
            )
            for item, (_r, gold) in zip(extractions, pairs, strict=True)
        ]

    def _extract_all(
        self, responses: list[str], truncated: list[bool], thinking: ThinkingFormat
    ) -> list[dict]:
        """``{"reason", "answer"}`` per response, extracted in the workers in batches.

        Batching spares a pipe round trip per response (extraction takes microseconds). A batch
        whose task failed (timeout, memory limit, error) is retried one response per task, so
        only the response at fault gets that reason.
        """
        results: list[dict | None] = [None] * len(responses)
        batches = _batches(responses)
        while batches:
            tasks = [
                {
                    "kind": "extract",
                    "thinking": str(thinking),
                    "items": [[responses[i], truncated[i]] for i in batch],
                }
                for batch in batches
            ]
            retry = []
            for batch, reply in zip(batches, self._pool.run(tasks), strict=True):
                if "results" in reply:
                    for i, (reason, answer) in zip(batch, reply["results"], strict=True):
                        results[i] = {"reason": reason, "answer": answer}
                elif len(batch) == 1:
                    results[batch[0]] = {"reason": reply["reason"], "answer": None}
                else:
                    retry += [[i] for i in batch]
            batches = retry
        return results

    def _compare_all(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Reason]:
        """Reasons for (gold, answer) keys: cached ones, then the rest through the pool."""
        reasons: dict[tuple[str, str], Reason] = {}
        pending: list[tuple[str, str]] = []
        for gold, answer in keys:
            cached = self._cache.get((gold, answer, self.version))
            if cached is None:
                pending.append((gold, answer))
            else:
                self._cache.move_to_end((gold, answer, self.version))
                reasons[(gold, answer)] = cached
        tasks = [{"kind": "compare", "gold": gold, "answer": answer} for gold, answer in pending]
        for key, reply in zip(pending, self._pool.run(tasks), strict=True):
            reasons[key] = Reason(reply["reason"])
            if reasons[key] is not Reason.ERROR:  # a crash may not repeat: never cache it
                self._remember((*key, self.version), reasons[key])
        return reasons

    def _remember(self, key: tuple[str, str, str], reason: Reason) -> None:
        if self.config.cache_size == 0:
            return
        self._cache[key] = reason
        self._cache.move_to_end(key)
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)


def _batches(responses: list[str]) -> list[list[int]]:
    """Indices of `responses` cut into batches of at most `_BATCH_RESPONSES` responses and
    about `_BATCH_CHARS` characters."""
    batches: list[list[int]] = []
    size = 0
    for index, response in enumerate(responses):
        if (
            not batches
            or len(batches[-1]) >= _BATCH_RESPONSES
            or size + len(response) > _BATCH_CHARS
        ):
            batches.append([])
            size = 0
        batches[-1].append(index)
        size += len(response)
    return batches


def _require_strings(pairs: Sequence[tuple[str, str]]) -> None:
    """Raise ConfigError naming the first pair whose response or gold is not a string."""
    for index, (response, gold) in enumerate(pairs):
        for name, value in (("response", response), ("gold", gold)):
            if not isinstance(value, str):
                raise ConfigError(
                    f"pair {index}: {name} is {type(value).__name__} ({value!r:.40}), not a "
                    "string; a missing response has no verdict: drop the pair or grade ''"
                )


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
    """Grade one response against its gold answer, bounded by a hard timeout and a memory limit.

    Extraction and comparison run in a shared one-worker `Grader` started on first use (about a
    second) and stopped at exit, so even a single call never reads the response or runs
    math-verify unbounded in this process or thread. Stages that grade many pairs should own a
    `Grader`.

    Args:
        response: the generated text.
        gold: the gold answer (LaTeX, without ``\\boxed``).
        thinking: where the thinking section is (`ThinkingFormat` value).
        truncated: the generator stopped at the length cap.

    Returns:
        The `Verdict`.

    Raises:
        ConfigError: `thinking` is not a format, or `response` or `gold` is not a string.
    """
    global _default_grader
    with _default_lock:
        if _default_grader is None:
            _default_grader = Grader(GraderConfig(workers=1))
            atexit.register(_close_default_grader)
    return _default_grader.grade(response, gold, thinking=str(thinking), truncated=truncated)
