"""Generation throughput: (a) the transformers backend through the Ray pool vs a bare batched
``model.generate`` loop on the same requests (overhead ratio); (b) the Ray pool with 1 vs 2 CPU
actors (scaling ratio).

The workload is the rollin stage's: ``--problems`` prompts x ``--samples`` samples, up to
``--max-new`` tokens each, batch 64, one torch thread per process. The model is the shipped tiny
policy when it is there, else a random model of its shape (same cost per token).

Run: .venv/bin/python benchmarks/bench_generation.py [--problems 128 --samples 4 --max-new 128]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.pop("RAY_ADDRESS", None)

import torch  # noqa: E402

from tracefactory.config import RayConfig, WorkerConfig
from tracefactory.generation.config import PolicyConfig, RollinConfig, SamplingConfig
from tracefactory.generation.rollin import run_rollin  # noqa: E402
from tracefactory.io import ShardWriter, TableReader  # noqa: E402
from tracefactory.models import load_tokenizer  # noqa: E402
from tracefactory.params import Params
from tracefactory.toyworld import POLICY_DIR  # noqa: E402

BATCH = 64


def policy_folder(scratch: Path) -> Path:
    """The shipped tiny policy, or a random Qwen2 of its shape with its tokenizer."""
    if (POLICY_DIR / "config.json").is_file():
        return POLICY_DIR
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tracefactory.toyworld.tokenizer import build_tokenizer, save_tokenizer

    folder = scratch / "random-tiny"
    tokenizer = build_tokenizer()
    save_tokenizer(tokenizer, folder)
    config = Qwen2Config(
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=len(tokenizer),
        max_position_embeddings=320,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


def write_problems(directory: Path, count: int) -> list[str]:
    texts = [f"{i % 5 + 2}+{i % 3 + 2}*{i % 4 + 2}-{i % 6 + 1}=? (mod 7)" for i in range(count)]
    rows = [
        {
            "problem_id": f"p{i:05d}",
            "source": "bench",
            "problem": t,
            "answer": "0",
            "split": "train",
        }
        for i, t in enumerate(texts)
    ]
    writer = ShardWriter(directory, "problems", {"producer": "bench", "params_hash": "bench"})
    writer.write("shard-00000", rows)
    writer.finalize()
    return texts


def bare_generate(folder: Path, texts: list[str], samples: int, max_new: int) -> tuple[float, int]:
    """Seconds and generated tokens of the usual loop: batched, left-padded ``model.generate``."""
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    tokenizer = load_tokenizer(str(folder))
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    prompts = [f"{t}\n<think>\n" for t in texts for _ in range(samples)]
    start, tokens = time.perf_counter(), 0
    for offset in range(0, len(prompts), BATCH):
        batch = tokenizer(
            prompts[offset : offset + BATCH],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        with torch.inference_mode():
            out = model.generate(
                **batch,
                do_sample=True,
                max_new_tokens=max_new,
                top_p=1.0,
                top_k=0,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        generated = out[:, batch["input_ids"].shape[1] :]
        tokens += int((generated != tokenizer.pad_token_id).sum())
    return time.perf_counter() - start, tokens


def pool_run(
    args, folder: Path, problems: Path, out: Path, actors: int | None
) -> tuple[float, int]:
    """Seconds and generated tokens of the rollin stage (Ray pool of ``actors``, or in-process)."""
    params = Params(
        seed=0,
        ray=RayConfig(num_cpus=2),
        rollin=RollinConfig(
            problems_dir=str(problems),
            output_dir=str(out),
            samples_per_problem=args.samples,
            policies=[PolicyConfig(name="tiny", model=str(folder), batch_size=BATCH)],
            sampling=SamplingConfig(max_response_tokens=args.max_new),
            problems_per_shard=BATCH // args.samples,
            use_ray=actors is not None,
            workers=WorkerConfig(count=actors or 1, num_cpus=1),
        ),
    )
    start = time.perf_counter()
    run_rollin(params.rollin, params.seed, params.ray if actors else None)
    seconds = time.perf_counter() - start
    tokens = TableReader(out).scan().select("token_ids").collect()["token_ids"].list.len().sum()
    return seconds, int(tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=128)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new", type=int, default=128)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import ray

    from tracefactory.ray_cluster import init_ray

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        folder = policy_folder(scratch)
        texts = write_problems(scratch / "problems", args.problems)
        rows = args.problems * args.samples
        print(f"model {folder.name}; {rows} samples x <= {args.max_new} tokens, batch {BATCH}")
        results = {"bare model.generate": bare_generate(folder, texts, args.samples, args.max_new)}
        results["backend, in-process"] = pool_run(
            args, folder, scratch / "problems", scratch / "local", None
        )
        start = time.perf_counter()
        init_ray(RayConfig(num_cpus=2))
        print(f"ray.init: {time.perf_counter() - start:.1f} s (not counted below)")
        try:
            for actors in (1, 2):
                # Fixed cost: actors start, import torch, load the model, run one tiny shard.
                write_problems(scratch / f"one{actors}", actors)
                fixed, _ = pool_run(
                    args, folder, scratch / f"one{actors}", scratch / f"fixed{actors}", actors
                )
                print(f"Ray pool, {actors} actor(s): startup + one small shard {fixed:.1f} s")
                results[f"Ray pool, {actors} actor(s)"] = pool_run(
                    args, folder, scratch / "problems", scratch / f"ray{actors}", actors
                )
                seconds, tokens = results[f"Ray pool, {actors} actor(s)"]
                results[f"  same, minus startup ({actors})"] = (seconds - fixed, tokens)
        finally:
            ray.shutdown()
    for name, (seconds, tokens) in results.items():
        print(f"{name:24s} {seconds:7.2f} s  {tokens:7d} tokens  {tokens / seconds:8,.0f} tok/s")
    bare_rate = results["bare model.generate"][1] / results["bare model.generate"][0]
    one = results["Ray pool, 1 actor(s)"]
    two = results["Ray pool, 2 actor(s)"]
    print(
        f"(a) pool overhead ratio, tok/s bare / tok/s Ray pool 1 actor: "
        f"{bare_rate / (one[1] / one[0]):.2f}"
    )
    print(
        f"(b) scaling ratio, tok/s 2 actors / tok/s 1 actor: "
        f"{(two[1] / two[0]) / (one[1] / one[0]):.2f}"
    )
    warm_one, warm_two = results["  same, minus startup (1)"], results["  same, minus startup (2)"]
    warm_ratio = (warm_two[1] / warm_two[0]) / (warm_one[1] / warm_one[0])
    print(
        f"    without actor startup: (a) {bare_rate / (warm_one[1] / warm_one[0]):.2f}, "
        f"(b) {warm_ratio:.2f}"
    )
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
