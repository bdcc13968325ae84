"""Generation and grading on a two-node Ray cluster whose worker node shares no files with the
driver: the workers' working directory has no ``data/``, so every input row must reach them
through Ray and every output row come back (the driver alone reads and writes tables)."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from tracefactory.config import RayConfig, WorkerConfig
from tracefactory.generation.config import RollinConfig, RolloutConfig, SamplingConfig
from tracefactory.generation.rollin import run_rollin
from tracefactory.generation.rollout import run_rollout
from tracefactory.grading.config import VerifyConfig
from tracefactory.grading.stage import VerifyStage
from tracefactory.io import TableReader
from tracefactory.stage import run_stage

pytestmark = pytest.mark.integration

ON_WORKER_NODE = WorkerConfig(count=2, num_cpus=0.5, resources={"worker_node": 1})


def _configs(workers: WorkerConfig, tiny_policy, use_ray: bool):
    """Stage sections with *relative* table paths: they resolve only in the driver's folder."""
    sampling = SamplingConfig(max_response_tokens=40)
    rollin = RollinConfig(
        samples_per_problem=2,
        policies=[tiny_policy],
        sampling=sampling,
        problems_per_shard=3,
        use_ray=use_ray,
        workers=workers,
    )
    rollout = RolloutConfig(
        policy=tiny_policy,
        sampling=sampling,
        rollins_per_shard=4,
        use_ray=use_ray,
        workers=workers,
    )
    verify = VerifyConfig(grader={"workers": 1}, use_ray=use_ray, workers=workers)
    return rollin, rollout, verify


def _run_chain(folder: Path, workers, tiny_policy, make_problems, ray_config) -> dict:
    folder.mkdir()
    os.chdir(folder)
    make_problems(Path("data/problems"), 6)
    rollin, rollout, verify = _configs(workers, tiny_policy, ray_config is not None)
    run_rollin(rollin, 11, ray_config)
    run_rollout(rollout, 11, ray_config)
    run_stage(VerifyStage(verify), verify.output_dir, ray_config)
    return {
        name: pl.from_arrow(TableReader(f"data/{name}").read()).sort(pl.all())
        for name in ("rollins", "rollouts", "verdicts")
    }


def test_stages_need_no_shared_filesystem(tmp_path, tiny_policy, make_problems, monkeypatch):
    import ray
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    expected = _run_chain(tmp_path / "local", WorkerConfig(), tiny_policy, make_problems, None)

    empty = tmp_path / "worker-node-cwd"
    empty.mkdir()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=2, resources={"worker_node": 2})
    try:
        # Every worker starts in a copy of an empty folder: a relative data/ path fails there.
        ray.init(address=cluster.address, runtime_env={"working_dir": str(empty)})

        @ray.remote(resources={"worker_node": 1}, num_cpus=0.5)
        def worker_view() -> tuple[str, bool, str]:
            return os.getcwd(), Path("data").exists(), ray.get_runtime_context().get_node_id()

        cwd, has_data, node = ray.get(worker_view.remote())
        assert not has_data and Path(cwd) != tmp_path / "ray"
        assert node != ray.get_runtime_context().get_node_id()  # not the driver's node
        ray_config = RayConfig(address=cluster.address)
        actual = _run_chain(
            tmp_path / "ray", ON_WORKER_NODE, tiny_policy, make_problems, ray_config
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    for name, table in expected.items():
        assert table.height > 0, name
        assert actual[name].equals(table), name
