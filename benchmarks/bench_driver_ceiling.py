"""The driver's ceiling: how many rows and tokens per second one driver takes in through Ray and
writes, with simulated engines on a second node as fast as they go.

Starts a 2-node ``ray.cluster_utils.Cluster`` (the driver's head node and a worker node with
``--workers`` CPUs), writes a synthetic problems table, and runs the real rollin stage with the
simulated engine (paper lengths, 16,384-token cap, 14 roll-ins per problem, 4 problems a shard) on
the worker node. The intake is measured in steady state, from the table itself: each shard file
lands (is renamed into place by the writer) when the driver has received and written it, so the
rows and tokens of every shard after the first, over the time from the first shard's landing to
the last's, are what the driver took in and wrote per second once the workers were running. The
workers' start, before the first shard, drops out. The rate is printed beside what the engines
alone produce (one engine timed in this process, times the worker count): when the stage's rate
is well under the engines', the driver (receiving rows, writing zstd Parquet) is what limits it.
The whole run's rate, start included, is printed too.

Run: python benchmarks/bench_driver_ceiling.py [--problems 1280] [--workers 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from tracefactory.config import RayConfig, WorkerConfig
from tracefactory.generation.config import (
    PolicyConfig,
    RollinConfig,
    SamplingConfig,
    SimulationConfig,
)
from tracefactory.generation.engine import GenerationRequest, load_backend
from tracefactory.generation.rollin import RollinStage, read_problems
from tracefactory.generation.templates import encode_prompt
from tracefactory.models import load_tokenizer
from tracefactory.problems.config import ProblemsConfig
from tracefactory.problems.stage import ProblemsStage
from tracefactory.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=1280)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray.cluster_utils import Cluster

    root = Path(tempfile.mkdtemp(prefix="bench-ceiling-"))
    cluster = None
    try:
        problems = ProblemsConfig.model_validate(
            {
                "output_dir": str(root / "problems"),
                "sources": [
                    {"name": "synthetic", "type": "synthetic", "counts": {"train": args.problems}}
                ],
            }
        )
        run_stage(ProblemsStage(problems, 1234), problems.output_dir)
        policy = PolicyConfig(
            name="sim",
            backend="simulated",
            simulation=SimulationConfig(problems_dir=str(root / "problems")),
        )
        config = RollinConfig(
            problems_dir=str(root / "problems"),
            output_dir=str(root / "rollins"),
            samples_per_problem=14,
            policies=[policy],
            sampling=SamplingConfig(max_response_tokens=16_384),
            problems_per_shard=4,
            workers=WorkerConfig(count=args.workers, num_cpus=1, resources={"worker_node": 1}),
        )
        engine_rate = _engine_tokens_per_s(config)
        print(f"load average: {os.getloadavg()}")
        print(f"one simulated engine alone: {engine_rate:,.0f} tokens/s")

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        cluster.add_node(num_cpus=args.workers, resources={"worker_node": args.workers})
        started, started_at = time.perf_counter(), time.time()
        summary = run_stage(
            RollinStage(config, run_seed=1234),
            config.output_dir,
            RayConfig(address=cluster.address),
        )
        wall = time.perf_counter() - started
        tokens = summary.stats["tokens"]
        print(f"{args.problems} problems: {summary.rows:,} rows, {tokens:,} tokens, {wall:.1f} s")
        landed = sorted(Path(config.output_dir).glob("*.parquet"), key=lambda p: p.stat().st_mtime)
        first, last = landed[0].stat().st_mtime, landed[-1].stat().st_mtime
        rows, tokens_after = 0, 0
        for shard in landed[1:]:
            ids = pq.read_table(shard, columns=["token_ids"]).column("token_ids")
            rows += len(ids)
            tokens_after += int(pc.sum(pc.list_value_length(ids)).as_py())
        print(
            f"steady-state intake ({len(landed) - 1} shards after the first, "
            f"{last - first:.1f} s): {rows / (last - first):,.1f} rows/s, "
            f"{tokens_after / (last - first):,.0f} tokens/s (engines alone: {args.workers} x "
            f"{engine_rate:,.0f} = {args.workers * engine_rate:,.0f} tokens/s)"
        )
        print(
            f"the whole run, workers' start included ({wall:.1f} s, first shard after "
            f"{first - started_at:.1f} s): {summary.rows / wall:,.1f} rows/s, "
            f"{tokens / wall:,.0f} tokens/s"
        )
        print(f"load average: {os.getloadavg()}")
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def _engine_tokens_per_s(config: RollinConfig) -> float:
    """Tokens/s of one simulated engine generating one shard's requests in this process."""
    policy = config.policies[0]
    backend = load_backend(policy)
    tokenizer = load_tokenizer(policy.model)
    spec = config.sampling.spec(tokenizer)
    seeds = tuple(range(14))
    requests = [
        GenerationRequest(pid, tuple(encode_prompt(tokenizer, "tiny", text)), seeds, spec)
        for pid, text in read_problems(config)[:8]
    ]
    started = time.perf_counter()
    results = backend.generate(requests)
    tokens = sum(len(s.token_ids) for r in results for s in r.samples)
    return tokens / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
