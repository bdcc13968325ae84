"""Measure a tiny policy on held-out problems and write its model card beside the weights.

The card (``README.md`` for people, ``card.json`` for tests and tools) records what the embedded
default relies on: pass@1 in 30-85%, per-problem success rates spread out, mistakes that
propagate to a wrong answer (few lucky hits), which kinds of mistakes the policy makes, and CPU
generation speed with one and two processes.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import statistics
import time
from collections import Counter
from pathlib import Path

from tracefactory.toyworld.task import (
    SlipKind,
    SyntheticTaskConfig,
    check_trace,
    extract_boxed,
    format_prompt,
)

logger = logging.getLogger(__name__)


def load_policy(folder: Path):
    """Load model and tokenizer the way the pipeline loads a Hub model (``from_pretrained``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    return model, tokenizer


def sample_responses(
    model,
    tokenizer,
    problems: list[str],
    num_samples: int,
    temperature: float = 1.0,
    seed: int = 0,
    max_new_tokens: int = 160,
    batch_size: int = 256,
) -> tuple[list[list[str]], int]:
    """Sample ``num_samples`` responses per problem (left-padded batches, seeded).

    Returns:
        Responses per problem (special tokens removed, ``</think>`` kept) and the number of
        generated tokens.
    """
    import torch

    torch.manual_seed(seed)
    prompts = [format_prompt(problem) for problem in problems for _ in range(num_samples)]
    texts, generated = [], 0
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
        with torch.no_grad():
            output = model.generate(
                **batch,
                do_sample=True,
                temperature=temperature,
                top_p=1.0,
                top_k=0,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = output[:, batch["input_ids"].shape[1] :]  # (B, T_new)
        generated += int((new_tokens != tokenizer.pad_token_id).sum())
        texts += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    grouped = [texts[i : i + num_samples] for i in range(0, len(texts), num_samples)]
    return grouped, generated


def _majority_correct(answers: list[str | None], gold: str) -> float:
    """1 if the most frequent answer is gold, split evenly on ties (expected accuracy)."""
    counts = Counter(answer for answer in answers if answer is not None)
    if not counts:
        return 0.0
    top = max(counts.values())
    winners = [answer for answer, count in counts.items() if count == top]
    return (gold in winners) / len(winners)


def measure_policy(
    folder: Path,
    rows: list[dict],
    num_samples: int,
    temperature: float = 1.0,
    seed: int = 0,
    modulus: int = SyntheticTaskConfig().modulus,
) -> dict:
    """Sample, grade (exact match of the last ``\\boxed{}``) and check every trace.

    Returns:
        pass@1, majority vote@n, pass@n, per-problem success-rate spread, pass@1 by number of
        operators, kinds of first mistakes, and the share of mistaken traces that still hit gold.
    """
    model, tokenizer = load_policy(folder)
    started = time.monotonic()
    grouped, generated = sample_responses(
        model, tokenizer, [r["problem"] for r in rows], num_samples, temperature, seed
    )
    seconds = time.monotonic() - started
    rates, votes, first_errors, by_ops = [], [], Counter(), {}
    mistaken = lucky = 0
    for row, responses in zip(rows, grouped, strict=True):
        answers = [extract_boxed(text) for text in responses]
        hits = [answer == row["answer"] for answer in answers]
        rates.append(sum(hits) / num_samples)
        votes.append(_majority_correct(answers, row["answer"]))
        by_ops.setdefault(row["num_ops"], []).append(rates[-1])
        for text, hit in zip(responses, hits, strict=True):
            errors = check_trace(row["expression"], text, modulus)
            if errors:
                mistaken += 1
                lucky += hit
                first_errors[str(errors[0])] += 1
    total = len(rows) * num_samples
    return {
        "problems": len(rows),
        "samples_per_problem": num_samples,
        "temperature": temperature,
        "pass@1": round(statistics.mean(rates), 4),
        f"majority_vote@{num_samples}": round(statistics.mean(votes), 4),
        f"pass@{num_samples}": round(sum(rate > 0 for rate in rates) / len(rates), 4),
        "success_rate_std": round(statistics.pstdev(rates), 4),
        "share_problems_all_wrong": round(sum(r == 0 for r in rates) / len(rates), 4),
        "share_problems_all_right": round(sum(r == 1 for r in rates) / len(rates), 4),
        "pass@1_by_num_ops": {k: round(statistics.mean(v), 4) for k, v in sorted(by_ops.items())},
        "share_samples_with_mistake": round(mistaken / total, 4),
        "first_mistake_share_of_samples": {
            kind.value: round(first_errors[kind.value] / total, 4) for kind in SlipKind
        },
        "lucky_hit_rate": round(lucky / max(1, mistaken), 4),
        "sampling_tokens_per_second": round(generated / seconds),
    }


def _throughput_worker(folder: str, problems: list[str], queue) -> None:
    """Sample in a fresh process with one torch thread and report tokens/s."""
    import torch

    torch.set_num_threads(1)
    model, tokenizer = load_policy(Path(folder))
    sample_responses(model, tokenizer, problems[:8], 1)  # warm-up
    started = time.monotonic()
    _, generated = sample_responses(model, tokenizer, problems, 1, seed=1)
    queue.put(generated / (time.monotonic() - started))


def generation_throughput(folder: Path, problems: list[str], processes: int) -> dict[str, float]:
    """Aggregate CPU sampling tokens/s with ``processes`` processes of one thread each."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_throughput_worker, args=(str(folder), problems, queue))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    rates = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    return {"processes": processes, "tokens_per_second_total": round(sum(rates))}


def write_card(folder: Path, card: dict) -> None:
    """Write ``card.json`` and a short ``README.md`` model card beside the weights."""
    folder = Path(folder)
    (folder / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    lines = [
        f"# {card.get('name', folder.name)}",
        "",
        "A tiny causal LM (Qwen3 architecture, character tokenizer) trained from scratch on CPU by",
        "`tracefactory tiny-policy train` to solve tracefactory's synthetic modular-arithmetic",
        "problems in DeepSeek-R1 format: prompt `{problem}\\n<think>\\n`, response",
        "`...one reduction per line...\\n</think>\\n\\boxed{ANSWER}<eos>`. It is trained to",
        "reduce a `+`/`-` before a pending `*` (a precedence slip) at a fixed rate: its mistakes",
        "are systematic and visible in the text, what a value model must learn to see.",
        "",
        "## Measured (held-out `test` split, disjoint from training by construction)",
        "",
        "```json",
        json.dumps(card, indent=2, sort_keys=True),
        "```",
        "",
    ]
    (folder / "README.md").write_text("\n".join(lines))
