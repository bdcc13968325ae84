"""Value-model tokens, time and cache memory: incremental KV-cached scoring (unbounded, and
bounded by a cache budget) vs full re-encoding.

Run:
    python benchmarks/bench_value_scoring.py [--value-model models/value_model] [--beams 8]
        [--cache-tokens 25000]

Simulates a search's scoring pattern (``--problems`` prompts, ``--beams`` kept beams, two
candidates per beam per block of ``--block`` tokens, ``--steps`` blocks) on a value model (default:
a random tiny Qwen2 built in memory), checks the scorers agree, and prints the token ratios and
the most cached tokens each held (the bounded scorer re-encodes what its budget cannot keep).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import torch

from tracefactory.search.interfaces import ScoreItem
from tracefactory.search.scoring import FullValueScorer, IncrementalValueScorer


def build_model(path: str | None):
    from tracefactory.valuemodel.model import ValueModel

    if path:
        return ValueModel.from_pretrained(path)
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = tempfile.mkdtemp()
    config = Qwen2Config(hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4, vocab_size=100)  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return ValueModel.from_policy(folder)


def rounds(args) -> list[list[ScoreItem]]:
    """The items a search scores at each step, with one kept child per beam."""
    rng = random.Random(0)
    sequences, frontier, next_id, steps = {}, [], 0, []
    for _ in range(args.problems):
        prompt = tuple(rng.randrange(3, 90) for _ in range(args.prompt))
        for _ in range(args.beams):
            sequences[next_id] = prompt
            frontier.append(next_id)
            next_id += 1
    for _ in range(args.steps):
        items = []
        for parent in frontier:
            for _ in range(2):
                block = tuple(rng.randrange(3, 90) for _ in range(args.block))
                sequences[next_id] = sequences[parent] + block
                items.append(ScoreItem(next_id, parent, len(sequences[parent]), sequences[next_id]))
                next_id += 1
        steps.append(items)
        frontier = [item.node_id for item in items[::2]]
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--value-model", default=None)
    parser.add_argument("--problems", type=int, default=25)
    parser.add_argument("--beams", type=int, default=8)
    parser.add_argument("--prompt", type=int, default=20)
    parser.add_argument("--block", type=int, default=12)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--cache-tokens", type=int, default=25000, help="bounded scorer budget")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = build_model(args.value_model).eval()
    steps = rounds(args)
    results = {}
    for name, scorer in (
        ("full", FullValueScorer(model)),
        ("incremental", IncrementalValueScorer(model)),
        ("bounded", IncrementalValueScorer(model, max_cache_tokens=args.cache_tokens)),
    ):
        started, values = time.perf_counter(), []
        for items in steps:
            values += scorer.score(items)
            scorer.retain({item.node_id for item in items[::2]})
        peak = getattr(scorer, "peak_cached_tokens", 0)
        results[name] = (scorer.tokens_processed, time.perf_counter() - started, values, peak)
    diff = max(
        abs(a - b)
        for name in ("incremental", "bounded")
        for a, b in zip(results["full"][2], results[name][2], strict=True)
    )
    for name, (tokens, seconds, _, peak) in results.items():
        print(f"{name:12s} value tokens {tokens:9,d}   time {seconds:6.2f} s   "
              f"peak cached tokens {peak:9,d}")  # fmt: skip
    full = results["full"][0]
    print(
        f"token ratio full/incremental: {full / results['incremental'][0]:.2f}x   "
        f"full/bounded: {full / results['bounded'][0]:.2f}x   max |value diff|: {diff:.2e}"
    )


if __name__ == "__main__":
    main()
