"""The shape of a stage and the two ways to run one: in this process, or over pools of Ray actors.

A stage plans its work as named shards on the driver, reads each shard's input rows on the driver
(through ``tracefactory.io``), and turns them into rows of its output table in a worker. Workers
receive their input through Ray and return their output rows, so nodes need no shared filesystem:
only the driver reads and writes tables. Everything else (skipping finished shards, writing
atomically, replacing dead workers, progress, the manifest) lives here once, so every stage resumes
and reports the same way.

A stage owns its whole contract: its params section (``config``), its output table
(``output_schema``), the version of its row semantics (``version``, part of the params hash), the
counters its shards count (``counters``), its side outputs, and its two reports (``report`` for
``metrics.json``, ``summary`` for ``summary.json``). ``tracefactory.stages.STAGES`` lists them.
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl
import pyarrow as pa

from tracefactory.budget import Budget
from tracefactory.config import RayConfig, Section, WorkerConfig, params_hash
from tracefactory.errors import ShardError, TracefactoryError
from tracefactory.io import ShardWriter, SideFiles
from tracefactory.stats import Progress

if TYPE_CHECKING:
    from tracefactory.params import Params

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """A named unit of work: its name is the output shard's, its payload what a worker needs."""

    name: str
    payload: Any = None
    pool: str = ""  # the worker pool that runs it (``Stage.pools``): one per engine kind


@dataclass
class ShardResult:
    """What a worker returns for one shard: rows to write, counters (members of the stage's
    ``counters``) for progress and stats, and the rows of each of the stage's ``side_outputs``."""

    rows: pa.Table | list[dict]
    counts: dict[str, int] = field(default_factory=dict)
    side: dict[str, pl.DataFrame] = field(default_factory=dict)


@dataclass
class StageRun:
    """What a stage's table holds once a run finished it: the input of ``Stage.report``."""

    shards_planned: int
    shards_skipped: int  # already complete from an earlier run: logged, never reported
    rows: int
    stats: dict[str, int]  # summed over every shard of the table, this run's and earlier ones
    side: dict[str, bytes] = field(default_factory=dict)  # each side output, as JSON lines


class Stage(ABC):
    """One pipeline step. Subclasses hold only config (they are pickled to workers) and load heavy
    state (engines, graders) in ``setup``, which runs once per worker.

    A stage whose shards need different engines (the rollin stage: one per policy of the pool)
    names a worker pool per engine in ``pools``; the pools run one after the other, each with its
    own workers, and every shard lands in the one table.

    ``version`` is the version of the stage's row semantics: bump it with any code change that
    changes the rows it writes for the same params and inputs. It enters the params hash, so
    finished shards of an older version are recomputed, while a cosmetic change keeps them
    (``tests/test_golden.py`` holds each stage's output digest per version).
    """

    name: ClassVar[str]  # stage name, as in dvc.yaml and reports/<name>/
    output_schema: ClassVar[str]  # contract of the output table in schemas/
    version: ClassVar[int]  # of the row semantics; see the class docstring
    counters: ClassVar[type[StrEnum]]  # every counter a shard may count (a value ending in "_"
    # names a family: ``dropped_`` covers ``dropped_<reason>``)
    rate_counts: ClassVar[tuple[str, ...]] = ()  # counts the progress line shows as rates
    side_outputs: ClassVar[tuple[str, ...]] = ()  # extra JSON-lines files, kept with the shards
    config: Section  # the stage's params section

    @classmethod
    def from_params(cls, params: Params) -> Stage:
        """The stage as ``params`` configures it (its section, and the run seed if it needs it):
        how ``tracefactory <name>`` builds it. A stage that runs inside a recipe, on engines the
        recipe built (the evaluation), is built by that recipe instead."""
        raise NotImplementedError(f"stage {cls.name!r} is built by its recipe")

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir)

    @property
    def use_ray(self) -> bool:
        """Whether the command runs this stage on the Ray cluster (``<section>.use_ray``)."""
        return bool(getattr(self.config, "use_ray", False))

    @abstractmethod
    def plan(self) -> list[Shard]:
        """All shards of the output table, deterministically (runs on the driver)."""

    @abstractmethod
    def identity(self) -> list:
        """What the rows depend on besides the code: params (without locations) and the
        fingerprints of inputs (tables, models, files)."""

    def table_metadata(self) -> dict[str, str]:
        """Output table metadata beyond producer and params hash (tokenizer fields for token
        tables)."""
        return {}

    def metadata(self) -> dict[str, str]:
        """Output table metadata. The params hash is composed here and only here: the stage's
        name and row-semantics version, then its ``identity``. Shards written under another hash
        are recomputed."""
        return {
            "producer": self.name,
            "params_hash": params_hash(self.name, self.version, *self.identity()),
            **self.table_metadata(),
        }

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

    def report(self, run: StageRun) -> dict:
        """The detail for ``reports/<name>/metrics.json`` (default: shards, rows, counters).

        Only what the finished table holds: the same whether the run resumed or not."""
        return {"shards_planned": run.shards_planned, "rows": run.rows, "stats": run.stats}

    @staticmethod
    @abstractmethod
    def summary(report: dict) -> dict:
        """The few numbers of ``report`` that ``dvc metrics show`` compares (``summary.json``)."""


def run_stage(
    stage: Stage,
    output_dir: str | Path | None = None,
    ray_config: RayConfig | None = None,
    fresh: bool = False,
    budget: Budget | None = None,
) -> StageRun:
    """Run every unfinished shard of ``stage`` and finalize its table.

    With ``ray_config`` each pool's shards go to that pool's Ray actors (``Stage.pools``); without
    it they run in this process. Either way each finished shard is written atomically as soon as it
    arrives (in the writer's background thread, while the next shard is produced), so an
    interruption loses only the shards in flight, and a rerun skips what is done. ``fresh``
    recomputes every shard, finished or not.

    Args:
        output_dir: the table's folder (default: the stage's ``output_dir``).

    Raises:
        ShardError: a shard failed (its error is chained), or its worker died too often, or
            counted a counter its stage does not declare. Shards finished before the failure stay
            on disk; a run that fails before its first shard leaves the table (stale shards and
            manifest included) as it was.
        TableLockedError: another process is writing the same table.
        BudgetExhaustedError: ``budget`` ran out; no new shard was started after that, and the
            finished ones are kept (the table is left unfinalized, a rerun continues).
    """
    output_dir = Path(output_dir if output_dir is not None else stage.output_dir)
    side = SideFiles(output_dir, stage.side_outputs)
    with ShardWriter(output_dir, stage.output_schema, stage.metadata()) as writer:
        plan = stage.plan()
        names = [s.name for s in plan]
        if len(set(names)) != len(names):
            raise ShardError(f"stage {stage.name!r} planned duplicate shard names")
        done = writer.completed()
        writer.redo(done if fresh else {n for n in done if not side.complete(n)})
        done = writer.completed()
        todo = [s for s in plan if s.name not in done]
        skipped = len(plan) - len(todo)
        logger.info(
            "%s: %d shards planned, %d already complete%s",
            stage.name, len(plan), skipped, " (--fresh: recomputing all)" if fresh else "",
        )  # fmt: skip
        _run_pools(stage, todo, writer, side, ray_config, budget)
        manifest = writer.finalize(expected=set(names))
    stats = manifest.counts
    _check_counters(stage, stats, f"{output_dir}'s shards of earlier runs (rerun with --fresh)")
    return StageRun(len(plan), skipped, manifest.rows, stats, side.collect(names))


def _check_counters(stage: Stage, counts: dict[str, int], where: str) -> None:
    """Refuse a counter the stage does not declare: a renamed counter must fail, not read as 0."""
    exact = {str(c) for c in stage.counters}
    families = tuple(c for c in exact if c.endswith("_"))
    unknown = [k for k in counts if k not in exact and not k.startswith(families)]
    if unknown:
        raise ShardError(
            f"stage {stage.name!r}: {where} counted {sorted(unknown)}, which are not members of "
            f"{stage.counters.__name__}"
        )


def _store_side(stage: Stage, side: SideFiles, shard: Shard, result: ShardResult) -> None:
    if set(result.side) != set(side.names):
        raise ShardError(
            f"stage {stage.name!r}, shard {shard.name!r}: side outputs "
            f"{sorted(result.side)}, expected {sorted(side.names)}"
        )
    side.store(shard.name, result.side)


def _run_pools(
    stage: Stage, todo: list[Shard], writer: ShardWriter, side, ray_config, budget
) -> None:
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
            _run_local(stage, pool, pool_todo, writer, side, progress, budget)
        else:
            _run_on_ray(stage, pool, pool_todo, writer, side, progress, workers, ray_config, budget)
    progress.close()
    if budget is not None and budget.exhausted() and budget.shards < len(todo):
        raise budget.stopped(len(todo) - budget.shards)


def _record(stage: Stage, writer: ShardWriter, side, shard: Shard, result: ShardResult, progress):
    _check_counters(stage, result.counts, f"shard {shard.name!r}")
    _store_side(stage, side, shard, result)  # first: a shard is complete only with its side outputs
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


def _run_local(stage: Stage, pool: str, todo: list[Shard], writer, side, progress, budget) -> None:
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
        _record(stage, writer, side, shard, result, progress)
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
    stage, pool, todo, writer, side, progress, workers: WorkerConfig, ray_config, budget
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
            _record(stage, writer, side, shard, result, progress)
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
