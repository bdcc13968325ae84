"""Train the tiny policy from scratch on CPU: ``tracefactory tiny-policy train --out DIR``.

One loop, top to bottom (nanoGPT style). Every batch is half "fact drills" and half reference
traces of ``policy``-split problems written with precedence slips; the slip rate is what makes the
policy's mistakes systematic and visible. Deterministic for a seed: data come from a seeded
``random.Random``, weights from ``torch.manual_seed``, one thread.

The model is a Qwen3 causal LM (Qwen2 was the first choice, but transformers 5 maps ``qwen2`` to
``Qwen2Tokenizer`` whatever ``tokenizer_config.json`` says, and that tokenizer drops this
tokenizer's spaces and newlines; ``qwen3`` honours
``"tokenizer_class": "PreTrainedTokenizerFast"``).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path

from pydantic import Field

from tracefactory.config import Section
from tracefactory.errors import TracefactoryError
from tracefactory.toyworld.task import (
    SlipRates,
    SyntheticTaskConfig,
    drill_text,
    format_prompt,
    generate_problems,
    write_trace,
)
from tracefactory.toyworld.tokenizer import build_tokenizer, save_tokenizer

logger = logging.getLogger(__name__)
_POLICY_PROBLEM_POOL = 20_000  # distinct policy-split problems traces are drawn from


class TinyPolicyTrainConfig(Section):
    """How the shipped tiny policy is trained (``tracefactory tiny-policy train``)."""

    seed: int = 0
    """seeds data order, slips and weight init"""
    task: SyntheticTaskConfig = SyntheticTaskConfig()
    """the problems the policy learns to solve"""
    precedence_slip: float = Field(0.55, ge=0, le=1)
    """per-step rate of reducing +/- before a *"""
    fact_slip: float = Field(0.0, ge=0, le=1)
    """per-step rate of a wrong result digit"""
    copy_slip: float = Field(0.0, ge=0, le=1)
    """per-step rate of a miscopied operand in the rest"""
    drill_fraction: float = Field(0.4, ge=0, le=1)
    """share of each batch that is fact drills"""
    batch_size: int = Field(32, ge=1)
    """sequences per optimizer step"""
    steps: int = Field(2000, ge=1)
    """optimizer steps (1,000: 23% of samples reduce a pair not in the expression; 2,000: 3%)"""
    weak_step: int | None = 500
    """also save a weaker checkpoint after this step (None: don't)"""
    learning_rate: float = Field(1e-3, gt=0)
    """peak AdamW lr (2e-3 and 3e-3 never learnt to copy)"""
    min_learning_rate: float = Field(1e-4, ge=0)
    """end of the cosine decay"""
    warmup_steps: int = Field(50, ge=0)
    """linear warmup steps"""
    weight_decay: float = Field(0.1, ge=0)
    """AdamW weight decay"""
    hidden_size: int = 128
    """model width"""
    num_layers: int = 4
    """transformer blocks"""
    num_heads: int = 4
    """attention heads (= key/value heads)"""
    intermediate_size: int = 512
    """MLP width"""
    max_positions: int = 256
    """longest sequence the model accepts (tokens)"""
    log_every: int = Field(100, ge=1)
    """steps between progress lines"""


def build_model(config: TinyPolicyTrainConfig, vocab_size: int, eos_id: int, pad_id: int):
    """A freshly initialised Qwen3 causal LM with tied embeddings (seeded by the caller)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    model_config = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        head_dim=config.hidden_size // config.num_heads,
        max_position_embeddings=config.max_positions,
        tie_word_embeddings=True,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    return Qwen3ForCausalLM(model_config)


def _encode_example(tokenizer, prompt: str, target: str) -> tuple[list[int], list[int]]:
    """Token ids of prompt + target + EOS, and labels that score only the target and EOS."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt_ids + target_ids, [-100] * len(prompt_ids) + target_ids


def _make_batch(rng: random.Random, problems: list[dict], config: TinyPolicyTrainConfig, tokenizer):
    """One padded batch (input_ids, attention_mask, labels) of drills and slipped traces."""
    import torch

    slips = SlipRates(config.precedence_slip, config.fact_slip, config.copy_slip)
    task = config.task
    examples = []
    for _ in range(config.batch_size):
        if rng.random() < config.drill_fraction:
            drill = drill_text(rng, task.modulus, task.operators)
            examples.append(_encode_example(tokenizer, drill[:2], drill[2:]))
        else:
            row = rng.choice(problems)
            response, _ = write_trace(row["expression"], task.modulus, rng, slips)
            examples.append(_encode_example(tokenizer, format_prompt(row["problem"]), response))
    width = max(len(ids) for ids, _ in examples)
    if width > config.max_positions:
        raise TracefactoryError(f"a {width}-token example exceeds max_positions")
    pad = tokenizer.pad_token_id
    ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in examples])  # (B, T)
    labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in examples])  # (B, T)
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in examples])  # (B, T)
    return ids, mask, labels


def _learning_rate(step: int, config: TinyPolicyTrainConfig) -> float:
    """Linear warmup, then cosine decay to ``min_learning_rate``."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.min_learning_rate + cosine * (config.learning_rate - config.min_learning_rate)


def save_policy(model, tokenizer, folder: Path) -> None:
    """Write weights (fp32 safetensors), config, generation config and tokenizer to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    save_tokenizer(tokenizer, folder)


def train_tiny_policy(
    config: TinyPolicyTrainConfig, out_dir: Path, weak_out_dir: Path | None = None
) -> dict[str, float]:
    """Train the tiny policy and save it (and the weak checkpoint) in Hugging Face format.

    Args:
        config: Training configuration.
        out_dir: Folder for the final policy (created; files inside are overwritten).
        weak_out_dir: Folder for the checkpoint after ``config.weak_step``; skipped if None.

    Returns:
        Training summary: final loss, seconds, tokens per second, parameters.

    Raises:
        TracefactoryError: The loss became NaN (names the step).
    """
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    tokenizer = build_tokenizer()
    problems = generate_problems(config.seed, _POLICY_PROBLEM_POOL, "policy", config.task)
    model = build_model(config, len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=config.learning_rate,
        betas=(0.9, 0.95),
        weight_decay=config.weight_decay,
    )
    model.train()
    started, tokens, running = time.monotonic(), 0, 0.0
    for step in range(config.steps):
        ids, mask, labels = _make_batch(rng, problems, config, tokenizer)
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, config)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        if not torch.isfinite(loss):
            raise TracefactoryError(f"tiny-policy loss is {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        tokens += int(mask.sum())
        running = loss.item() if step == 0 else 0.95 * running + 0.05 * loss.item()
        if (step + 1) % config.log_every == 0:
            elapsed = time.monotonic() - started
            logger.info(
                "step %d/%d loss %.4f | %.0f tok/s | eta %.0f s",
                step + 1,
                config.steps,
                running,
                tokens / elapsed,
                elapsed / (step + 1) * (config.steps - step - 1),
            )
        if weak_out_dir is not None and step + 1 == config.weak_step:
            save_policy(model, tokenizer, weak_out_dir)
    model.eval()
    save_policy(model, tokenizer, out_dir)
    elapsed = time.monotonic() - started
    return {
        "final_loss": round(running, 4),
        "train_seconds": round(elapsed, 1),
        "train_tokens_per_second": round(tokens / elapsed),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def train_and_write_cards(
    config: TinyPolicyTrainConfig,
    out_dir: Path,
    weak_out_dir: Path | None = None,
    eval_problems: int = 200,
    eval_samples: int = 8,
) -> dict:
    """The body of ``tracefactory tiny-policy train``: train, then measure and write the cards.

    Returns:
        The final policy's card (also written to ``out_dir/card.json``).
    """
    summary = train_tiny_policy(config, out_dir, weak_out_dir)
    return write_cards(config, out_dir, weak_out_dir, summary, eval_problems, eval_samples)


def write_cards(
    config: TinyPolicyTrainConfig,
    out_dir: Path,
    weak_out_dir: Path | None,
    summary: dict,
    eval_problems: int = 200,
    eval_samples: int = 8,
) -> dict:
    """Measure trained policies and write ``card.json`` + ``README.md`` beside their weights.

    Measures pass@1 and the rest on ``eval_problems`` held-out ``test`` problems (seed 0, sampled
    at temperature 1.0), and CPU sampling speed with one and two processes (final policy only;
    those run in spawned processes, so a calling script needs an ``if __name__ == "__main__"``
    guard).

    Returns:
        The final policy's card.
    """
    from tracefactory.toyworld.card import generation_throughput, measure_policy, write_card

    rows = generate_problems(0, eval_problems, "test", config.task)
    folders = {"policy": out_dir} | ({"policy-weak": weak_out_dir} if weak_out_dir else {})
    for name, folder in folders.items():
        logger.info("measuring %s on %d test problems x %d", name, eval_problems, eval_samples)
        card = {
            "name": f"tracefactory tiny {name}",
            "architecture": "Qwen3ForCausalLM",
            "train_config": config.model_dump(mode="json"),
            "trained_steps": config.weak_step if name == "policy-weak" else config.steps,
            "training": summary,
            "test": measure_policy(folder, rows, eval_samples, modulus=config.task.modulus),
        }
        if name == "policy":
            prompts = [row["problem"] for row in rows]
            card["cpu_sampling"] = [generation_throughput(folder, prompts, n) for n in (1, 2)]
        write_card(folder, card)
    return json.loads((Path(out_dir) / "card.json").read_text())
