"""Value-model training cost: padding and tokens/s, ours vs the official scheme and a plain loop.

Run: python benchmarks/bench_value_training.py [--problems 250] [--steps 20]

(a) Padded tokens as a fraction of processed tokens, on the same steps' rows: ours
    (length-grouped micro-batches within each step) vs the official trainer (micro-batches of 8
    rows in data order, each padded to a multiple of 1,024) vs plain padding (8 rows in data
    order, padded to the longest).
(b) Training tokens/s (real tokens per second of optimiser steps) on a tiny Qwen2 on CPU with one
    thread: the recipe's step (length-grouped) vs a plain loop over the same steps' rows in fixed
    micro-batches of 8, padded to the longest row, with the same loss and optimiser.
Data: the synthetic labels table at two length scales: the embedded default's (~20-130 tokens) and a
long-tailed one (~100-2,000 tokens) that resembles reasoning traces.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from tracefactory.recipes import train_value_model  # noqa: E402
from tracefactory.valuemodel.batching import micro_batches, step_rows  # noqa: E402
from tracefactory.valuemodel.config import TrainConfig  # noqa: E402
from tracefactory.valuemodel.dataset import DatasetSplit, open_dataset  # noqa: E402
from tracefactory.valuemodel.model import ValueModel  # noqa: E402
from tracefactory.valuemodel.synthetic import (  # noqa: E402
    synthetic_rows,
    write_synthetic_dataset,
)

BATCH, OFFICIAL_MICRO = 64, 8
SEED = 1234  # params.seed of the embedded default: the recipe orders its data by it


def padding_fractions(split: DatasetSplit, steps: int, cfg: TrainConfig) -> dict[str, float]:
    lengths = split.lengths
    real = ours = official = plain = 0
    for step in range(steps):
        rows = step_rows(split.num_rows, BATCH, SEED, step)
        real += int(lengths[rows].sum())
        for mb in micro_batches(
            rows, lengths, cfg.micro_batch_tokens, overhead_tokens=cfg.micro_batch_overhead_tokens
        ):
            ours += len(mb) * int(lengths[mb].max())
        for i in range(0, len(rows), OFFICIAL_MICRO):
            mb = rows[i : i + OFFICIAL_MICRO]
            longest = int(lengths[mb].max())
            official += len(mb) * math.ceil(longest / 1024) * 1024
            plain += len(mb) * longest
    return {
        "ours": 1 - real / ours,
        "official_pad_to_1024": 1 - real / official,
        "plain_pad_to_longest": 1 - real / plain,
    }


def plain_tokens_per_s(split: DatasetSplit, cfg: TrainConfig, steps: int, init: Path) -> float:
    """A plain loop: each step's rows in micro-batches of 8 in data order; same loss, optimiser."""
    torch.manual_seed(SEED)
    model = ValueModel.from_policy(init, dropout=cfg.dropout)
    optimizer = train_value_model.build_optimizer(model, cfg, torch.device("cpu"))
    tokens, seconds = 0, 0.0
    for step in range(steps):
        started = time.perf_counter()
        rows = step_rows(split.num_rows, BATCH, SEED, step)
        for i in range(0, len(rows), OFFICIAL_MICRO):
            batch = split.batch(rows[i : i + OFFICIAL_MICRO])
            logits, _ = model(batch["input_ids"], batch["attention_mask"])
            loss = train_value_model.batch_loss(logits, batch, cfg.target).sum() / len(rows)
            loss.backward()
            tokens += int(batch["attention_mask"].sum())
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds += time.perf_counter() - started
    return tokens / seconds


def bench(name: str, rows: list[dict], steps: int, work: Path) -> dict:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    init = work / "policy"
    if not init.exists():
        config = Qwen2Config(
            hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=4, vocab_size=64, max_position_embeddings=4096,
        )  # fmt: skip
        Qwen2ForCausalLM(config).save_pretrained(init)
    dataset = write_synthetic_dataset(work / f"dataset-{name}", rows)
    section = {
        "dataset": str(dataset), "datasets_cache": str(work / "hf_cache"),
        "init_from": str(init), "out_dir": str(work / f"out-{name}"),
        "checkpoint_dir": str(work / f"ckpt-{name}"), "reports_dir": str(work / f"rep-{name}"),
        "batch_size": BATCH, "max_steps": steps, "eval_every": 0, "checkpoint_every": 0,
        "max_length": 4096, "eval_max_rows": 1, "warmup_steps": 2,
    }  # fmt: skip
    (work / f"{name}.yaml").write_text(json.dumps({"train": section}))
    cfg = TrainConfig.model_validate(section)
    cache = str(work / "hf_cache")
    train, *_ = open_dataset(str(dataset), "default", None, cfg.max_length, (1, 0), cache)
    ours = train_value_model.main(["--params", str(work / f"{name}.yaml")])["train"]
    return {
        "mean_length": float(train.lengths.mean()),
        "padding_fraction": padding_fractions(train, steps, cfg),
        "tokens_per_s": {
            "ours": ours["tokens_per_s"],
            "plain_loop": plain_tokens_per_s(train, cfg, steps, init),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=250)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = {
            "embedded_default_lengths": bench(
                "short", synthetic_rows(args.problems, length_range=(10, 60)), args.steps, work
            ),
            "long_tailed_lengths": bench(
                "long", long_tailed(synthetic_rows(args.problems, seed=5)), args.steps, work
            ),
        }
    print(json.dumps(results, indent=2))


def long_tailed(rows: list[dict]) -> list[dict]:
    """Stretch each roll-out to a log-normal length (median ~400, capped at 2,000 tokens)."""
    rng = np.random.default_rng(0)
    for row in rows:
        start = row["supervised_start"]
        extra = int(min(2000, rng.lognormal(6.0, 0.7))) - len(row["input_ids"])
        if extra > 0:
            filler = rng.integers(14, 64, size=extra).tolist()
            row["input_ids"] = row["input_ids"][:start] + filler + row["input_ids"][start:]
            row["token_labels"] = [row["label"]] * (len(row["input_ids"]) - start)
    return rows


if __name__ == "__main__":
    main()
