import importlib
import os
import signal
import sys
import time
from enum import StrEnum
from pathlib import Path

import polars as pl
import pytest

from tracefactory.config import RayConfig, WorkerConfig
from tracefactory.errors import ShardError
from tracefactory.io import TableReader
from tracefactory.stage import Shard, ShardResult, Stage, run_stage


class Count(StrEnum):
    SAMPLES = "samples"


class CountingStage(Stage):
    """Writes one problems row per number; can die (SIGKILL) or fail on a chosen shard once."""

    name = "counting"
    output_schema = "problems"
    version = 1
    counters = Count
    rate_counts = (Count.SAMPLES,)

    def __init__(
        self,
        shards: int,
        die_once_marker: Path | None = None,
        fail_on: str | None = None,
        workers: WorkerConfig | None = None,
        setup_s: float = 0.0,
        hang_on: str | None = None,
    ):
        self.shards, self.die_once_marker, self.fail_on = shards, die_once_marker, fail_on
        self.workers = workers or WorkerConfig()
        self.setup_s, self.hang_on = setup_s, hang_on

    def setup(self, pool: str) -> None:
        time.sleep(self.setup_s)  # an engine that takes this long to load

    def pools(self) -> dict[str, WorkerConfig]:
        return {"": self.workers}

    def plan(self) -> list[Shard]:
        return [Shard(f"shard-{i:05d}", payload=i) for i in range(self.shards)]

    def identity(self) -> list:
        return []

    @staticmethod
    def summary(report: dict) -> dict:
        return {"rows": report["rows"]}

    def process(self, shard: Shard, inputs: None) -> ShardResult:
        if shard.name == self.fail_on:
            raise ValueError("bad input in this shard")
        if shard.name == self.hang_on:
            time.sleep(3600)
        if self.die_once_marker is not None and shard.payload == 1:
            if not self.die_once_marker.exists():
                self.die_once_marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        row = {"problem_id": f"p{shard.payload}", "source": "n", "problem": "q", "answer": "1"}
        return ShardResult([{**row, "split": "train"}], counts={Count.SAMPLES: 1})


def test_local_run_writes_every_shard_and_a_rerun_skips_them(tmp_path):
    summary = run_stage(CountingStage(3), tmp_path / "out")
    assert (summary.shards_planned, summary.shards_skipped, summary.rows) == (3, 0, 3)
    assert summary.stats == {"samples": 3}
    rerun = run_stage(CountingStage(3), tmp_path / "out")
    assert rerun.shards_skipped == 3


def test_a_failing_shard_names_itself_and_keeps_finished_shards(tmp_path):
    with pytest.raises(ShardError, match="shard 'shard-00002': bad input"):
        run_stage(CountingStage(4, fail_on="shard-00002"), tmp_path / "out")
    assert {p.stem for p in (tmp_path / "out").glob("*.parquet")} == {"shard-00000", "shard-00001"}


@pytest.mark.integration
def test_ray_pool_replaces_a_killed_worker_and_redoes_its_shard(tmp_path, monkeypatch):
    import ray

    # Workers unpickle CountingStage by module name: let them import this test module.
    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))

    marker = tmp_path / "died"
    try:
        summary = run_stage(
            CountingStage(4, die_once_marker=marker, workers=WorkerConfig(count=2, num_cpus=0.5)),
            tmp_path / "out",
            RayConfig(num_cpus=2),
        )
    finally:
        ray.shutdown()
    assert marker.exists()  # a worker really died
    ids = TableReader(tmp_path / "out").scan().collect()["problem_id"].sort().to_list()
    assert ids == ["p0", "p1", "p2", "p3"] and summary.rows == 4


def test_a_resumed_run_reports_the_whole_tables_counts(tmp_path):
    run_stage(CountingStage(2), tmp_path / "out")
    resumed = run_stage(CountingStage(3), tmp_path / "out")
    assert resumed.shards_skipped == 2
    assert resumed.stats == {"samples": 3}


def test_fresh_recomputes_every_finished_shard(tmp_path):
    run_stage(CountingStage(3), tmp_path / "out")
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.parquet")}
    fresh = run_stage(CountingStage(3), tmp_path / "out", fresh=True)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.parquet")}
    assert fresh.shards_skipped == 0 and fresh.rows == 3
    assert all(after[name] > before[name] for name in before)


def test_a_bumped_version_recomputes_and_the_same_version_keeps(tmp_path):
    class Revised(CountingStage):
        version = 2

    run_stage(CountingStage(3), tmp_path / "out")
    assert run_stage(CountingStage(3), tmp_path / "out").shards_skipped == 3
    assert run_stage(Revised(3), tmp_path / "out").shards_skipped == 0
    assert run_stage(Revised(3), tmp_path / "out").shards_skipped == 3


STAGE_MODULE = """
from enum import StrEnum

from tracefactory.stage import Shard, ShardResult, Stage


class Count(StrEnum):
    ROWS = "rows"


class EditedStage(Stage):
    name = "edited"
    output_schema = "problems"
    version = VERSION
    counters = Count

    def plan(self):
        return [Shard(f"shard-{i}", payload=i) for i in range(2)]

    def identity(self):
        return []

    def process(self, shard, inputs):  # COMMENT
        row = {"problem_id": f"p{shard.payload}", "source": "n", "problem": "q", "answer": "1"}
        return ShardResult([{**row, "split": "train"}], {Count.ROWS: 1})

    @staticmethod
    def summary(report):
        return {}
"""


def _load_edited(folder: Path, version: int, comment: str):
    """The stage of a module written with ``version`` and ``comment``, freshly imported."""
    (folder / "edited_stage.py").write_text(
        STAGE_MODULE.replace("VERSION", str(version)).replace("COMMENT", comment)
    )
    sys.modules.pop("edited_stage", None)
    importlib.invalidate_caches()
    return importlib.import_module("edited_stage").EditedStage()


def test_a_comment_change_keeps_finished_shards_and_a_version_bump_redoes_them(
    tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    assert run_stage(_load_edited(tmp_path, 1, "first words"), out).shards_skipped == 0
    assert run_stage(_load_edited(tmp_path, 1, "other words"), out).shards_skipped == 2
    assert run_stage(_load_edited(tmp_path, 2, "other words"), out).shards_skipped == 0
    monkeypatch.delitem(sys.modules, "edited_stage")


def test_a_counter_the_stage_does_not_declare_fails_the_run(tmp_path):
    class Miscounting(CountingStage):
        def process(self, shard, inputs):
            result = super().process(shard, inputs)
            return ShardResult(result.rows, {"sampels": 1})

    with pytest.raises(ShardError, match=r"shard 'shard-00000' counted \['sampels'\].*Count"):
        run_stage(Miscounting(2), tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.parquet"))


class DropLogStage(CountingStage):
    """Keeps even numbers; its side output ``dropped`` lists the odd ones."""

    side_outputs = ("dropped",)

    def process(self, shard: Shard, inputs: None) -> ShardResult:
        result = super().process(shard, inputs)
        dropped = pl.DataFrame({"number": [shard.payload]}).filter(pl.col("number") % 2 == 1)
        return ShardResult(result.rows, result.counts, side={"dropped": dropped})


def test_side_outputs_survive_a_rerun_that_skips_their_shards(tmp_path):
    first = run_stage(DropLogStage(4), tmp_path / "out")
    assert first.side["dropped"] == b'{"number":1}\n{"number":3}\n'
    rerun = run_stage(DropLogStage(4), tmp_path / "out")
    assert rerun.shards_skipped == 4 and rerun.side == first.side


def test_a_shard_whose_side_output_is_missing_is_recomputed(tmp_path):
    first = run_stage(DropLogStage(4), tmp_path / "out")
    (tmp_path / ".out.side" / "dropped" / "shard-00003.jsonl").unlink()
    rerun = run_stage(DropLogStage(4), tmp_path / "out")
    assert rerun.shards_skipped == 3 and rerun.side == first.side


def _on_ray(tmp_path, monkeypatch, stage, **ray_settings):
    import ray

    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    try:
        return run_stage(stage, tmp_path / "out", RayConfig(num_cpus=2, **ray_settings))
    finally:
        ray.shutdown()


@pytest.mark.integration
def test_a_placement_no_node_can_satisfy_fails_at_once(tmp_path, monkeypatch):
    stage = CountingStage(2, workers=WorkerConfig(resources={"gpu_node": 1}))
    started = time.monotonic()
    with pytest.raises(ShardError, match=r"needs \{.*'gpu_node': 1.*no node of the cluster"):
        _on_ray(tmp_path, monkeypatch, stage)
    assert time.monotonic() - started < 60


@pytest.mark.integration
def test_workers_whose_engine_never_loads_fail_after_the_start_timeout(tmp_path, monkeypatch):
    stage = CountingStage(2, workers=WorkerConfig(count=1, num_cpus=0.5), setup_s=600)
    with pytest.raises(ShardError, match="1 of 1 workers not ready after 5 s"):
        _on_ray(tmp_path, monkeypatch, stage, start_timeout_s=5)


@pytest.mark.integration
def test_a_stuck_worker_is_named_and_finished_shards_are_kept(tmp_path, monkeypatch):
    workers = WorkerConfig(count=1, num_cpus=0.5)
    stage = CountingStage(3, workers=workers, hang_on="shard-00001")
    with pytest.raises(ShardError, match=r"in flight: shard 'shard-00001' on pid \d+ on node"):
        _on_ray(tmp_path, monkeypatch, stage, no_progress_timeout_s=10)
    assert {p.stem for p in (tmp_path / "out").glob("*.parquet")} == {"shard-00000"}
