import os
import signal
import time
from pathlib import Path

import pytest

from tracefactory.config import RayConfig, WorkerConfig
from tracefactory.errors import ShardError
from tracefactory.io import TableReader
from tracefactory.stage import Shard, ShardResult, Stage, run_stage


class CountingStage(Stage):
    """Writes one problems row per number; can die (SIGKILL) or fail on a chosen shard once."""

    name = "counting"
    output_schema = "problems"
    rate_counts = ("samples",)

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

    def metadata(self) -> dict[str, str]:
        return {"producer": self.name, "params_hash": "x"}

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
        return ShardResult([{**row, "split": "train"}], counts={"samples": 1})


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
