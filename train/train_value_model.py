"""Train the VGS value model (arXiv 2505.17373, section 3) on the labels table.

Run:
    python train/train_value_model.py --params params.yaml [key=value ...]  # one process
    torchrun --nproc_per_node=4 train/train_value_model.py --params params.yaml  # DDP on 4 GPUs
Overrides are keys of the ``train:`` section (``max_steps=50`` or ``train.max_steps=50``).

One loop, top to bottom, in ``main``. Each optimiser step takes ``batch_size`` rows (all ranks
together) in the order fixed by (seed, step), splits them into length-grouped micro-batches
(gradient accumulation), and minimises the paper's loss: token cross-entropy over roll-out tokens,
averaged per sequence, then over the batch. A checkpoint (one dict) is written every
``checkpoint_every`` steps; a rerun resumes from it and reaches the same weights as an uninterrupted
run, because the data order and the dropout seed of each step depend only on (seed, step).
Outputs: the HF folder ``out_dir``, ``reports_dir/{metrics,curve,calibration}.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tracefactory.errors import ConfigError
from tracefactory.models import resolve_model
from tracefactory.params import load_params
from tracefactory.schemas import TrajectoryClass
from tracefactory.stats import Progress, write_metrics
from tracefactory.valuemodel import metrics as vm_metrics
from tracefactory.valuemodel.config import TrainConfig, ValueTarget
from tracefactory.valuemodel.data import (
    IGNORE_LABEL,
    LabelSplit,
    micro_batches,
    read_labels,
    step_rows,
    steps_per_epoch,
)
from tracefactory.valuemodel.model import ValueModel

logger = logging.getLogger("train_value_model")
CHECKPOINT_NAME = "checkpoint.pt"
# Fields that may change between a run and its resumption (they do not change the weights).
RESUME_FREE_FIELDS = {
    "resume", "device", "num_threads", "log_every", "eval_every", "eval_max_rows", "compile",
    "checkpoint_every", "out_dir", "reports_dir", "checkpoint_dir", "micro_batch_tokens",
    "micro_batch_overhead_tokens",
}  # fmt: skip


def load_config(argv: list[str] | None) -> tuple[TrainConfig, int]:
    """The ``train:`` section of ``--params`` and the run seed, with ``key=value`` overrides.

    Raises:
        ConfigError: naming the bad key and value.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml", help="params file (train: section)")
    parser.add_argument("overrides", nargs="*", help="overrides, e.g. train.max_steps=10")
    args = parser.parse_args(argv)
    params = load_params(args.params, args.overrides)
    return params.train, params.seed


def setup_distributed(cfg: TrainConfig) -> tuple[int, int, torch.device]:
    """(rank, world_size, device); initialises the process group under torchrun (WORLD_SIZE > 1)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    name = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if world_size > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        name = f"cuda:{local_rank}" if name.startswith("cuda") else "cpu"
        backend = "nccl" if name.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend=backend)
    device = torch.device(name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return rank, world_size, device


def learning_rate(step: int, cfg: TrainConfig, max_steps: int) -> float:
    """Linear warmup to max_lr, then cosine decay to min_lr_ratio * max_lr at max_steps."""
    min_lr = cfg.max_lr * cfg.min_lr_ratio
    if step < cfg.warmup_steps:
        return cfg.max_lr * (step + 1) / (cfg.warmup_steps + 1)
    progress = (step - cfg.warmup_steps) / max(1, max_steps - cfg.warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))) * (cfg.max_lr - min_lr)


def build_optimizer(model: ValueModel, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (dim >= 2) only; norms and biases are not decayed."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.max_lr, betas=(cfg.beta1, cfg.beta2), fused=fused)


def batch_loss(
    logits: torch.Tensor, batch: dict[str, torch.Tensor], target: ValueTarget
) -> torch.Tensor:
    """Per-sequence loss ``(B,)``: mean over the sequence's roll-out tokens (paper, section 3)."""
    if target == ValueTarget.TOKEN_LABELS:
        return vm_metrics.sequence_losses(logits, batch["targets"])
    log_probs = F.log_softmax(logits, dim=-1)  # (B, T, C)
    success = TrajectoryClass.CORRECT
    log_success = log_probs[..., success]  # (B, T)
    others = torch.cat([log_probs[..., :success], log_probs[..., success + 1 :]], -1)
    log_failure = torch.logsumexp(others, dim=-1)  # (B, T)
    soft = batch["branch_value"].float()[:, None]  # (B, 1)
    token_loss = -(soft * log_success + (1 - soft) * log_failure)  # (B, T)
    supervised = (batch["targets"] != IGNORE_LABEL).float()
    return (token_loss * supervised).sum(-1) / supervised.sum(-1).clamp(min=1)


def class_rates(split: LabelSplit) -> np.ndarray:
    """Training frequency of each class over rows: the constant baseline's prediction."""
    return np.bincount(split.label.astype(np.int64), minlength=len(TrajectoryClass)) / max(
        1, split.num_rows
    )


def save_checkpoint(path: Path, state: dict) -> None:
    """Write the checkpoint dict atomically (temp name, rename): a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def run_config(cfg: TrainConfig, seed: int) -> dict:
    """What a checkpoint records of its run: the ``train`` section and the run seed."""
    return {**cfg.model_dump(mode="json"), "seed": seed}


def load_checkpoint(path: Path, cfg: TrainConfig, seed: int) -> dict | None:
    """The checkpoint to resume from, or None; refuses one written with other training params."""
    if not (cfg.resume and path.is_file()):
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    theirs, ours = state["config"], run_config(cfg, seed)
    changed = [k for k in ours if k not in RESUME_FREE_FIELDS and theirs.get(k) != ours[k]]
    if changed:
        key = changed[0]
        raise ConfigError(
            f"{path} was written with different {changed} (e.g. {key}={theirs.get(key)!r}, "
            f"now {ours[key]!r}): delete it or set resume=false"
        )
    logger.info("resuming from %s at step %d", path, state["step"])
    return state


def evaluate(model, split, rows, cfg, rates, autocast) -> tuple[dict, list[dict]]:
    """Validation metrics and reliability points of ``rows`` of ``split``."""
    predictions = vm_metrics.predict(
        model, split, rows, cfg.position_bins, cfg.micro_batch_tokens, autocast
    )
    model.train()
    summary = vm_metrics.summarize(predictions, split, rates, cfg.calibration_bins)
    return summary, vm_metrics.calibration_points(predictions, split, cfg.calibration_bins)


def write_model(model: ValueModel, cfg: TrainConfig) -> Path:
    """Save the HF folder under a temporary name, then move it into place (as datasets does)."""
    out = Path(cfg.out_dir)
    tmp = out.with_name(f"{out.name}.incomplete")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, tokenizer_from=resolve_model(cfg.init_from))
    (tmp / "training_config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate and save; returns the final metrics (also written to reports_dir)."""
    cfg, seed = load_config(argv)
    torch.set_num_threads(cfg.num_threads)
    rank, world_size, device = setup_distributed(cfg)
    master = rank == 0
    ddp = world_size > 1
    train, val, data_stats = read_labels(cfg.labels_dir, cfg.max_length)
    if train.num_rows < cfg.batch_size or cfg.batch_size < world_size:
        raise ConfigError(
            f"batch_size={cfg.batch_size} needs world_size={world_size} <= batch_size <= "
            f"train rows={train.num_rows}"
        )
    per_epoch = steps_per_epoch(train.num_rows, cfg.batch_size)
    max_steps = cfg.max_steps or max(1, round(cfg.epochs * per_epoch))
    rates = class_rates(train)
    eval_rows = np.random.default_rng(seed).permutation(val.num_rows)[: cfg.eval_max_rows]

    torch.manual_seed(seed)  # head initialisation
    model = ValueModel.from_policy(resolve_model(cfg.init_from), dropout=cfg.dropout).to(device)
    on_gpu = device.type == "cuda"
    if on_gpu and cfg.gradient_checkpointing:
        model.model.gradient_checkpointing_enable({"use_reentrant": False})
    bf16 = on_gpu and cfg.bf16
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    optimizer = build_optimizer(model, cfg, device)
    checkpoint_path = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME
    state = load_checkpoint(checkpoint_path, cfg, seed)
    step, curve, totals = 0, [], {"tokens": 0, "padded_tokens": 0, "seconds": 0.0}
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, curve, totals = state["step"], state["curve"], state["totals"]
    trained = torch.compile(model) if cfg.compile else model
    if ddp:
        trained = torch.nn.parallel.DistributedDataParallel(trained)
    model.train()
    progress = Progress("train", max_steps, unit="steps") if master else None
    interval_loss, interval_steps = 0.0, 0

    while step < max_steps:
        started = time.perf_counter()
        lr = learning_rate(step, cfg, max_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(seed * 1_000_003 + step * 101 + rank)  # dropout: a function of the step
        rows = step_rows(train.num_rows, cfg.batch_size, seed, step)
        micro = micro_batches(
            rows, train.lengths, cfg.micro_batch_tokens, rank, world_size,
            cfg.micro_batch_overhead_tokens,
        )  # fmt: skip
        # Sum of per-sequence losses / rows in the step; DDP averages gradients over ranks: x world.
        scale = world_size / len(rows)
        step_loss = torch.zeros((), device=device)
        tokens = padded = 0
        for i, micro_rows in enumerate(micro):
            batch = train.batch(micro_rows, device)
            last = i == len(micro) - 1
            no_sync = trained.no_sync() if ddp and not last else contextlib.nullcontext()
            with no_sync, autocast:
                logits, _ = trained(batch["input_ids"], batch["attention_mask"])  # (B, T, C)
                seq_loss = batch_loss(logits, batch, cfg.target)  # (B,)
                loss = seq_loss.sum() * scale
            loss.backward()
            step_loss += seq_loss.detach().sum()
            tokens += int(batch["attention_mask"].sum())
            padded += batch["input_ids"].numel()
        if ddp:
            torch.distributed.all_reduce(step_loss)
        step_loss = float(step_loss) / len(rows)
        if not math.isfinite(step_loss):
            raise FloatingPointError(f"loss is {step_loss} at step {step} (lr {lr:.3g})")
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        elapsed = time.perf_counter() - started
        totals["tokens"] += tokens * world_size
        totals["padded_tokens"] += padded * world_size
        totals["seconds"] += elapsed
        interval_loss, interval_steps = interval_loss + step_loss, interval_steps + 1
        if progress is not None:
            progress.advance(1, tokens=tokens * world_size)
        if master and step % cfg.log_every == 0:
            logger.info(
                "step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | padding %.1f%%",
                step, max_steps, step_loss, lr, tokens * world_size / elapsed,
                100 * (1 - tokens / max(1, padded)),
            )  # fmt: skip
        final = step == max_steps
        if master and ((cfg.eval_every and step % cfg.eval_every == 0) or final):
            summary, _ = evaluate(model, val, eval_rows, cfg, rates, autocast)
            curve.append(
                {
                    "step": step,
                    "train_loss": interval_loss / max(1, interval_steps),
                    "val_loss": summary["loss"],
                    "val_brier": summary["brier"],
                    "val_pairwise_accuracy": summary["pairwise_accuracy"],
                }
            )
            interval_loss, interval_steps = 0.0, 0
            logger.info("eval step %d | %s", step, {k: curve[-1][k] for k in curve[-1]})
        if master and cfg.checkpoint_every and (step % cfg.checkpoint_every == 0 or final):
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "config": run_config(cfg, seed),
                "curve": curve,
                "totals": totals,
            }
            save_checkpoint(checkpoint_path, state)
        if ddp:
            torch.distributed.barrier()

    if progress is not None:
        progress.close()
    result: dict = {}
    if master:
        result = finish(model, val, cfg, rates, autocast, curve, totals, data_stats, max_steps)
    if ddp:
        torch.distributed.destroy_process_group()
    return result


def finish(model, val, cfg, rates, autocast, curve, totals, data_stats, max_steps) -> dict:
    """Final evaluation on the whole val split; write the model folder, metrics and plots."""
    summary, calibration = evaluate(model, val, np.arange(val.num_rows), cfg, rates, autocast)
    write_model(model, cfg)
    reports = Path(cfg.reports_dir)
    result = {
        "val": summary,
        "train": {
            "steps": max_steps,
            "tokens": totals["tokens"],
            "tokens_per_s": totals["tokens"] / max(totals["seconds"], 1e-9),
            "padding_fraction": 1 - totals["tokens"] / max(1, totals["padded_tokens"]),
            "final_train_loss": curve[-1]["train_loss"] if curve else None,
            **data_stats.as_dict(),
        },
    }
    write_metrics(reports / "metrics.json", result)
    write_metrics(reports / "curve.json", curve)
    write_metrics(reports / "calibration.json", calibration)
    logger.info(
        "val: loss %.4f (constant %.4f) | brier %.4f (constant %.4f) | auroc %.3f | pairwise %.3f",
        summary["loss"], summary["baseline_loss"], summary["brier"], summary["baseline_brier"],
        summary["auroc"], summary["pairwise_accuracy"],
    )  # fmt: skip
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        main(sys.argv[1:])
    except ConfigError as e:
        sys.exit(f"error: {e}")
