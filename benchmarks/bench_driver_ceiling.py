"""The driver's ceiling: how many rows and tokens per second one driver takes in through Ray and
writes, with simulated engines on a second node as fast as they go.

Starts a 2-node ``ray.cluster_utils.Cluster`` (the driver's head node and a worker node with
``--workers`` CPUs), writes a synthetic problems table, and runs the real rollin stage with the
simulated engine (paper lengths, 16,384-token cap, 14 roll-ins per problem) on the worker node.
The stage runs on a quarter of the problems (a warm-up, discarded), again on a quarter and on all
of them; the rates are the difference (rows, tokens) of the last two over the difference in wall
time, so the workers' start, the same in both, drops out. They are printed beside what the
engines alone produce (one engine timed in this process, times the worker count): when the
stage's rate is well under the engines', the driver (receiving rows, writing zstd Parquet) is what
limits it. On a loaded machine the start's jitter can swamp the difference; the whole last run's
rate, start included, is printed too as a lower bound.

Run: python benchmarks/bench_driver_ceiling.py [--problems 160] [--workers 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

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
    parser.add_argument("--problems", type=int, default=160)
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
        runs = []
        # A first, discarded run warms the cluster (worker processes, imports): afterwards each
        # run's start costs the same, and the difference of the last two is the intake alone.
        for index, count in enumerate((args.problems // 4, args.problems // 4, args.problems)):
            sized = config.model_copy(
                update={"max_problems": count, "output_dir": str(root / f"rollins-{index}")}
            )
            started = time.perf_counter()
            summary = run_stage(
                RollinStage(sized, run_seed=1234),
                sized.output_dir,
                RayConfig(address=cluster.address),
            )
            runs.append((summary.rows, summary.stats["tokens"], time.perf_counter() - started))
            print(
                f"{count} problems: {runs[-1][0]:,} rows, {runs[-1][1]:,} tokens, "
                f"{runs[-1][2]:.1f} s"
            )
        (rows_a, tokens_a, wall_a), (rows_b, tokens_b, wall_b) = runs[1:]
        wall = wall_b - wall_a
        if wall > 0.1 * wall_b:
            print(
                f"driver intake: {(rows_b - rows_a) / wall:,.1f} rows/s, "
                f"{(tokens_b - tokens_a) / wall:,.0f} tokens/s (engines alone: {args.workers} x "
                f"{engine_rate:,.0f} = {args.workers * engine_rate:,.0f} tokens/s)"
            )
        else:
            print("the start's jitter swamps the difference: raise --problems (or see below)")
        print(
            f"lower bound (the whole last run, workers' start included): {rows_b / wall_b:,.1f} "
            f"rows/s, {tokens_b / wall_b:,.0f} tokens/s"
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
