"""The shape of a stage and the two ways to run one: in this process, or over pools of Ray actors.

A stage plans its work as named shards on the driver, reads each shard's input rows on the driver
(through ``tracefactory.io``), and turns them into rows of its output table in a worker. Workers
receive their input through Ray and return their output rows, so nodes need no shared filesystem:
only the driver reads and writes tables. Everything else (skipping finished shards, writing
atomically, replacing dead workers, progress, the manifest) lives here once, so every stage resumes
and reports the same way.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from tracefactory.budget import Budget
from tracefactory.config import RayConfig, WorkerConfig
from tracefactory.errors import ShardError, TracefactoryError
from tracefactory.io import ShardWriter
from tracefactory.stats import Progress

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """A named unit of work: its name is the output shard's, its payload what a worker needs."""

    name: str
    payload: Any = None
    pool: str = ""  # the worker pool that runs it (``Stage.pools``): one per engine kind


@dataclass
class ShardResult:
    """What a worker returns for one shard: rows to write, counters for progress and stats."""

    rows: pa.Table | list[dict]
    counts: dict[str, int] = field(default_factory=dict)


class Stage(ABC):
    """One pipeline step. Subclasses hold only config (they are pickled to workers) and load heavy
    state (engines, graders) in ``setup``, which runs once per worker.

    A stage whose shards need different engines (the rollin stage: one per policy of the pool)
    names a worker pool per engine in ``pools``; the pools run one after the other, each with its
    own workers, and every shard lands in the one table."""

    name: ClassVar[str]  # stage name, as in dvc.yaml and reports/<name>/
    output_schema: ClassVar[str]  # contract of the output table in schemas/
    rate_counts: ClassVar[tuple[str, ...]] = ()  # counts the progress line shows as rates

    @abstractmethod
    def plan(self) -> list[Shard]:
        """All shards of the output table, deterministically (runs on the driver)."""

    @abstractmethod
    def metadata(self) -> dict[str, str]:
        """Output table metadata: producer, params_hash, and tokenizer fields for token tables."""

    def pools(self) -> dict[str, WorkerConfig]:
        """Worker pools by name, in the order they run (default: one pool of default workers)."""
        return {"": WorkerConfig()}

    def read(self, shard: Shard) -> Any:
        """The shard's input rows, read on the driver through ``tracefactory.io`` (default: none;
        the payload is all a worker needs)."""
        return None

    def setup(self, pool: str) -> None:  # noqa: B027 - optional hook; most stages need nothing
        """Load per-worker state (the engine of ``pool``) before the first shard."""

    @abstractmethod
    def process(self, shard: Shard, inputs: Any) -> ShardResult:
        """Produce the rows of one shard from its ``read`` inputs (runs in a worker)."""


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
    ray_config: RayConfig | None = None,
    budget: Budget | None = None,
) -> StageSummary:
    """Run every unfinished shard of ``stage`` and finalize its table.

    With ``ray_config`` each pool's shards go to that pool's Ray actors (``Stage.pools``); without
    it they run in this process. Either way each finished shard is written atomically as soon as it
    arrives (in the writer's background thread, while the next shard is produced), so an
    interruption loses only the shards in flight, and a rerun skips what is done.

    Raises:
        ShardError: a shard failed (its error is chained), or its worker died too often. Shards
            finished before the failure stay on disk; a run that fails before its first shard
            leaves the table (stale shards and manifest included) as it was.
        TableLockedError: another process is writing the same table.
        BudgetExhaustedError: ``budget`` ran out; no new shard was started after that, and the
            finished ones are kept (the table is left unfinalized, a rerun continues).
    """
    with ShardWriter(output_dir, stage.output_schema, stage.metadata()) as writer:
        plan = stage.plan()
        names = [s.name for s in plan]
        if len(set(names)) != len(names):
            raise ShardError(f"stage {stage.name!r} planned duplicate shard names")
        done = writer.completed()
        todo = [s for s in plan if s.name not in done]
        skipped = len(plan) - len(todo)
        logger.info("%s: %d shards planned, %d already complete", stage.name, len(plan), skipped)
        _run_pools(stage, todo, writer, ray_config, budget)
        manifest = writer.finalize(expected=set(names))
    return StageSummary(len(plan), skipped, manifest["rows"], manifest["counts"])


def _run_pools(stage: Stage, todo: list[Shard], writer: ShardWriter, ray_config, budget) -> None:
    pools = stage.pools()
    unknown = {s.pool for s in todo} - pools.keys()
    if unknown:
        raise ShardError(f"stage {stage.name!r} planned shards for unknown pools {unknown}")
    progress = Progress(stage.name, len(todo))
    for pool, workers in pools.items():
        pool_todo = [s for s in todo if s.pool == pool]
        if not pool_todo:
            continue
        if budget is not None and budget.exhausted():
            break
        if ray_config is None:
            _run_local(stage, pool, pool_todo, writer, progress, budget)
        else:
            _run_on_ray(stage, pool, pool_todo, writer, progress, workers, ray_config, budget)
    progress.close()
    if budget is not None and budget.exhausted() and budget.shards < len(todo):
        raise budget.stopped(len(todo) - budget.shards)


def _record(stage: Stage, writer: ShardWriter, shard: Shard, result: ShardResult, progress):
    # stored in the background while the next shard is produced; finalize waits for it
    writer.submit(shard.name, result.rows, result.counts)
    progress.advance(**{k: v for k, v in result.counts.items() if k in stage.rate_counts})


def _read(stage: Stage, shard: Shard) -> Any:
    try:
        return stage.read(shard)
    except TracefactoryError:
        raise
    except Exception as e:
        raise ShardError(f"stage {stage.name!r}, shard {shard.name!r}: reading input: {e}") from e


def _run_local(stage: Stage, pool: str, todo: list[Shard], writer, progress, budget) -> None:
    stage.setup(pool)
    gpus = stage.pools()[pool].num_gpus
    for shard in todo:
        if budget is not None and budget.exhausted():
            return
        started = time.monotonic()
        inputs = _read(stage, shard)
        try:
            result = stage.process(shard, inputs)
        except Exception as e:
            raise ShardError(f"stage {stage.name!r}, shard {shard.name!r}: {e}") from e
        _record(stage, writer, shard, result, progress)
        if budget is not None:
            budget.spend(result.counts, time.monotonic() - started, gpus)


class _StageWorker:
    """A Ray actor owning one stage instance (and so one engine of one pool) for its lifetime."""

    def __init__(self, stage: Stage, pool: str) -> None:
        self.stage = stage
        self.stage.setup(pool)

    def process(self, shard: Shard, inputs: Any) -> ShardResult:
        return self.stage.process(shard, inputs)

    def location(self) -> str:
        """Where this worker runs (for watchdog messages): its pid and node address."""
        import ray

        return f"pid {os.getpid()} on node {ray.util.get_node_ip_address()}"


def _run_on_ray(
    stage, pool, todo, writer, progress, workers: WorkerConfig, ray_config, budget
) -> None:
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    from tracefactory.ray_cluster import init_ray

    init_ray(ray_config)
    where = f"stage {stage.name!r}" + (f", pool {pool!r}" if pool else "")
    worker_class = ray.remote(
        num_cpus=workers.num_cpus, num_gpus=workers.num_gpus, resources=workers.resources or None
    )(_StageWorker)
    actors = [worker_class.remote(stage, pool) for _ in range(min(workers.count, len(todo)))]
    queue: deque[tuple[Shard, int]] = deque((shard, 1) for shard in todo)
    pending: dict[Any, tuple[Any, Shard, int, float]] = {}
    try:
        locations = _wait_until_ready(where, actors, workers, ray_config.start_timeout_s)
        idle = list(actors)
        while pending or (queue and not (budget and budget.exhausted())):
            while idle and queue and not (budget and budget.exhausted()):
                actor = idle.pop()
                shard, attempt = queue.popleft()
                inputs = _read(stage, shard)
                ref = actor.process.remote(shard, inputs)
                pending[ref] = (actor, shard, attempt, time.monotonic())
            timeout = ray_config.no_progress_timeout_s
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
            if not ready:
                raise ShardError(_stuck_message(where, pending, locations, timeout))
            actor, shard, attempt, started = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except RayActorError as e:
                if attempt >= workers.max_shard_attempts:
                    raise ShardError(
                        f"{where}, shard {shard.name!r}: worker died {attempt} times"
                    ) from e
                logger.warning("worker running shard %s died (%s); replacing it", shard.name, e)
                ray.kill(actor)
                replacement = worker_class.remote(stage, pool)
                actors.append(replacement)
                idle.append(replacement)
                queue.appendleft((shard, attempt + 1))
                continue
            except RayTaskError as e:
                raise ShardError(f"{where}, shard {shard.name!r}: {e}") from e
            _record(stage, writer, shard, result, progress)
            if budget is not None:
                budget.spend(result.counts, time.monotonic() - started, workers.num_gpus)
            idle.append(actor)
    finally:
        for actor in actors:
            ray.kill(actor)


def _wait_until_ready(where: str, actors: list, workers: WorkerConfig, timeout: int) -> dict:
    """Each actor's location once its engine is built; fails fast on a placement no node can
    satisfy, and after ``timeout`` on workers that never become ready.

    Raises:
        ShardError: naming the demand, what the cluster offers and what to check.
    """
    import ray
    from ray.exceptions import RayActorError

    demand = {"CPU": workers.num_cpus, "GPU": workers.num_gpus, **workers.resources}
    demand = {name: amount for name, amount in demand.items() if amount}
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    if not any(all(node.get(k, 0) >= v for k, v in demand.items()) for node in nodes):
        raise ShardError(
            f"{where}: a worker needs {demand}, but no node of the cluster has that much "
            f"(nodes: {nodes}); lower workers.num_cpus / num_gpus / resources, or add nodes"
        )
    refs = {actor.location.remote(): actor for actor in actors}
    ready, waiting = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
    if waiting:
        raise ShardError(
            f"{where}: {len(waiting)} of {len(refs)} workers not ready after {timeout} s "
            f"(ray.start_timeout_s): their engine is still loading or stuck, or the cluster has "
            f"no free {demand} for them; check `ray status`, the workers' logs and the model "
            f"download. No finished shard is lost"
        )
    locations = {}
    for ref in ready:
        try:
            locations[refs[ref]] = ray.get(ref)
        except RayActorError as e:
            raise ShardError(f"{where}: a worker failed to start: {e}") from e
    return locations


def _stuck_message(where: str, pending: dict, locations: dict, timeout: int) -> str:
    now = time.monotonic()
    flight = [
        f"shard {shard.name!r} on {locations.get(actor, 'a replacement worker')} for "
        f"{now - started:.0f} s"
        for actor, shard, _, started in pending.values()
    ]
    return (
        f"{where}: no shard finished in {timeout} s (ray.no_progress_timeout_s); in flight: "
        f"{'; '.join(flight)}. Check those workers' logs (`ray logs`), their memory and GPUs; "
        f"finished shards are kept"
    )
