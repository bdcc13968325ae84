"""The shape of a stage and the two ways to run one: in this process, or over a pool of Ray actors.

A stage plans its work as named shards on the driver, and turns one shard into rows of its output
table in a worker. Everything else (skipping finished shards, writing atomically, replacing dead
workers, progress, the manifest) lives here once, so every stage resumes and reports the same way.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from tracefactory.config import RayConfig, WorkerConfig
from tracefactory.errors import ShardError
from tracefactory.io import ShardWriter
from tracefactory.stats import Progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """A named unit of work: its name is the output shard's, its payload what a worker needs."""

    name: str
    payload: Any = None


@dataclass
class ShardResult:
    """What a worker returns for one shard: rows to write, counters for progress and stats."""

    rows: pa.Table | list[dict]
    counts: dict[str, int] = field(default_factory=dict)


class Stage(ABC):
    """One pipeline step. Subclasses hold only config (they are pickled to workers) and load heavy
    state (engines, graders) in ``setup``, which runs once per worker."""

    name: ClassVar[str]  # stage name, as in dvc.yaml and reports/<name>/
    output_schema: ClassVar[str]  # contract of the output table in schemas/
    rate_counts: ClassVar[tuple[str, ...]] = ()  # counts the progress line shows as rates

    @abstractmethod
    def plan(self) -> list[Shard]:
        """All shards of the output table, deterministically (runs on the driver)."""

    @abstractmethod
    def metadata(self) -> dict[str, str]:
        """Output table metadata: producer, params_hash, and tokenizer fields for token tables."""

    def setup(self) -> None:  # noqa: B027 - optional hook; most stages need nothing
        """Load per-worker state before the first shard."""

    @abstractmethod
    def process(self, shard: Shard) -> ShardResult:
        """Produce the rows of one shard (runs in a worker)."""


@dataclass
class StageSummary:
    """What one run of a stage did, for its metrics file."""

    shards_planned: int
    shards_skipped: int  # already complete from an earlier run
    rows: int
    stats: dict[str, int]  # summed over every shard of the table, this run's and earlier ones


def run_stage(
    stage: Stage,
    output_dir: str | Path,
    workers: WorkerConfig | None = None,
    ray_config: RayConfig | None = None,
) -> StageSummary:
    """Run every unfinished shard of ``stage`` and finalize its table.

    With ``ray_config`` the shards go to a pool of ``workers.count`` Ray actors; without it they run
    in this process. Either way each finished shard is written atomically as soon as it arrives, so
    an interruption loses only the shards in flight, and a rerun skips what is done.

    Raises:
        ShardError: a shard failed (its error is chained), or its worker died too often. Shards
            finished before the failure stay on disk.
    """
    writer = ShardWriter(output_dir, stage.output_schema, stage.metadata())
    plan = stage.plan()
    names = [s.name for s in plan]
    if len(set(names)) != len(names):
        raise ShardError(f"stage {stage.name!r} planned duplicate shard names")
    done = writer.completed()
    todo = [s for s in plan if s.name not in done]
    skipped = len(plan) - len(todo)
    logger.info("%s: %d shards planned, %d already complete", stage.name, len(plan), skipped)
    progress = Progress(stage.name, len(todo))
    if ray_config is None:
        _run_local(stage, todo, writer, progress)
    else:
        _run_on_ray(stage, todo, writer, progress, workers or WorkerConfig(), ray_config)
    progress.close()
    manifest = writer.finalize(expected=set(names))
    return StageSummary(len(plan), skipped, manifest["rows"], manifest["counts"])


def _record(stage: Stage, writer: ShardWriter, shard: Shard, result: ShardResult, progress):
    writer.write(shard.name, result.rows, result.counts)
    progress.advance(**{k: v for k, v in result.counts.items() if k in stage.rate_counts})


def _run_local(stage: Stage, todo: list[Shard], writer, progress) -> None:
    if not todo:
        return
    stage.setup()
    for shard in todo:
        try:
            result = stage.process(shard)
        except Exception as e:
            raise ShardError(f"stage {stage.name!r}, shard {shard.name!r}: {e}") from e
        _record(stage, writer, shard, result, progress)


class _StageWorker:
    """A Ray actor owning one stage instance (and so one engine) for its lifetime."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.stage.setup()

    def process(self, shard: Shard) -> ShardResult:
        return self.stage.process(shard)

    def pid(self) -> int:
        return os.getpid()


def _run_on_ray(stage, todo, writer, progress, workers: WorkerConfig, ray_config) -> None:
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    from tracefactory.ray_cluster import init_ray

    if not todo:
        return
    init_ray(ray_config)
    worker_class = ray.remote(num_cpus=workers.num_cpus, num_gpus=workers.num_gpus)(_StageWorker)
    actors = [worker_class.remote(stage) for _ in range(min(workers.count, len(todo)))]
    queue: deque[tuple[Shard, int]] = deque((shard, 1) for shard in todo)
    pending: dict[Any, tuple[Any, Shard, int]] = {}
    idle = list(actors)
    try:
        while queue or pending:
            while idle and queue:
                actor = idle.pop()
                shard, attempt = queue.popleft()
                pending[actor.process.remote(shard)] = (actor, shard, attempt)
            timeout = ray_config.no_progress_timeout_s
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
            if not ready:
                raise ShardError(
                    f"stage {stage.name!r}: no shard finished in {timeout} s "
                    f"(ray.no_progress_timeout_s); finished shards are kept"
                )
            actor, shard, attempt = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except RayActorError as e:
                if attempt >= workers.max_shard_attempts:
                    raise ShardError(
                        f"stage {stage.name!r}, shard {shard.name!r}: worker died {attempt} times"
                    ) from e
                logger.warning("worker running shard %s died (%s); replacing it", shard.name, e)
                ray.kill(actor)
                idle.append(worker_class.remote(stage))
                queue.appendleft((shard, attempt + 1))
                continue
            except RayTaskError as e:
                raise ShardError(f"stage {stage.name!r}, shard {shard.name!r}: {e}") from e
            _record(stage, writer, shard, result, progress)
            idle.append(actor)
    finally:
        for actor in actors + idle:
            ray.kill(actor)
