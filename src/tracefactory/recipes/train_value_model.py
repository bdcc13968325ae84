"""Train the VGS value model (arXiv 2505.17373, section 3) on the published dataset.

Run:
    tracefactory train --params params.yaml [--set train.max_steps=50 ...]
    python train/train_value_model.py --params params.yaml [--set ...]   # the same, from a checkout
    torchrun --nproc_per_node=4 train/train_value_model.py --params params.yaml  # DDP on 4 GPUs
Overrides are ``--set section.key=value``, as for the ``tracefactory`` command.

The data is ``train.dataset``: the folder the ``dataset`` stage exports, the same dataset pulled
from the Hub (a Hub id), or a folder in the paper's OpenR1-VM layout; rows are fetched lazily from
the memory-mapped table, so memory does not grow with the data.

One loop, top to bottom, in ``main``. Each optimiser step takes ``batch_size`` rows (all ranks
together) in the order fixed by (seed, step), splits them into length-grouped micro-batches
(gradient accumulation), and minimises the paper's loss: token cross-entropy over roll-out tokens,
averaged per sequence, then over the batch. A checkpoint (one dict) is written every
``checkpoint_every`` steps; a rerun resumes from it and reaches the same weights as an uninterrupted
run, because the data order and the dropout seed of each step depend only on (seed, step).
A checkpoint is bound to what determines the weights (params, the data's fingerprint, the initial
weights): one written for anything else is not resumed. A finished run is not redone.
Outputs: the HF folder ``out_dir``, ``reports_dir/{metrics,summary,curve,calibration}.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tracefactory.errors import ConfigError, TrainingError
from tracefactory.integrity import record_folder
from tracefactory.io import atomic_folder
from tracefactory.models import (
    MODEL_FILE_SUFFIXES,
    load_tokenizer,
    require_same_tokenizer,
    resolve_model,
    tokenizer_hash,
)
from tracefactory.recipes import recipe_args, run_script
from tracefactory.schemas import TrajectoryClass
from tracefactory.stats import write_metrics
from tracefactory.summaries import train_summary, write_reports
from tracefactory.valuemodel import metrics as vm_metrics
from tracefactory.valuemodel.batching import IGNORE_LABEL, micro_batches, step_sampler
from tracefactory.valuemodel.card import draw_calibration, render_model_card
from tracefactory.valuemodel.checkpoint import (
    CHECKPOINT_NAME,
    finished_run,
    load_checkpoint,
    run_identity,
    save_checkpoint,
)
from tracefactory.valuemodel.config import Precision, TrainConfig, ValueTarget
from tracefactory.valuemodel.dataset import DatasetSplit, open_dataset
from tracefactory.valuemodel.model import ValueModel, weights_dtype
from tracefactory.valuemodel.schedule import learning_rate, warmup_steps

logger = logging.getLogger("train_value_model")


def load_config(argv: list[str] | None) -> tuple[TrainConfig, int]:
    """The ``train:`` section of ``--params`` and the run seed (``params.seed``), with overrides.

    The run seed draws the validation hold-out (data); ``train.seed`` (default: the run seed)
    draws what only changes the weights: see ``training_seed``.

    Overrides as ``tracefactory.recipes.recipe_args`` reads them.

    Raises:
        ConfigError: naming the bad key and value.
    """
    params = recipe_args(argv, __doc__.split("\n")[0], "train.max_steps=10").params
    return params.train, params.seed


def training_seed(cfg: TrainConfig, run_seed: int) -> int:
    """The seed of the head's initialisation, the data order and dropout: ``train.seed``, else the
    run seed. Separate so training noise can be measured on the same data."""
    return run_seed if cfg.seed is None else cfg.seed


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


def build_optimizer(model: ValueModel, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (dim >= 2) only; norms and biases are not decayed."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"
    return torch.optim.AdamW(
        groups, lr=cfg.max_lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=fused
    )


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


def class_rates(split: DatasetSplit) -> np.ndarray:
    """Training frequency of each class over rows: the constant baseline's prediction."""
    return np.bincount(split.label.astype(np.int64), minlength=len(TrajectoryClass)) / max(
        1, split.num_rows
    )


def check_tokenizer(cfg: TrainConfig, data: dict[str, str]) -> None:
    """Refuse token ids of another vocabulary than the backbone's (nothing is re-tokenized).

    Raises:
        ConfigError: the hashes differ, or the backbone has no tokenizer to compare with.
    """
    if not data.get("tokenizer_hash"):
        logger.warning(
            "%s records no tokenizer hash (not made by tracefactory): assuming its token ids "
            "are %s's", cfg.dataset, cfg.init_from,
        )  # fmt: skip
        return
    try:
        ours = tokenizer_hash(load_tokenizer(cfg.init_from))
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"train.init_from={cfg.init_from!r} has no loadable tokenizer: {e}"
        ) from e
    require_same_tokenizer(f"dataset {cfg.dataset}", data["tokenizer_hash"], cfg.init_from, ours)


def evaluate(model, split, rows, cfg, rates, autocast) -> tuple[dict, list[dict]]:
    """Validation metrics and reliability points of ``rows`` of ``split``."""
    predictions = vm_metrics.predict(
        model, split, rows, cfg.position_bins, cfg.micro_batch_tokens, autocast
    )
    model.train()
    summary = vm_metrics.summarize(predictions, split, rates, cfg.calibration_bins)
    return summary, vm_metrics.calibration_points(predictions, split, cfg.calibration_bins)


def write_model(
    model: ValueModel, cfg: TrainConfig, identity: dict, summary: dict, calibration: list[dict]
) -> Path:
    """Save the HF folder and its card under a temporary name, then move it into place."""
    with atomic_folder(cfg.out_dir) as tmp:
        model.save_pretrained(tmp, tokenizer_from=resolve_model(cfg.init_from))
        figure = draw_calibration(calibration, tmp / "calibration.png")
        (tmp / "README.md").write_text(render_model_card(cfg, summary, calibration, figure))
        record = {"train": cfg.model_dump(mode="json"), "run": identity}
        (tmp / "training_config.json").write_text(json.dumps(record, indent=2) + "\n")
        record_folder(tmp, MODEL_FILE_SUFFIXES)  # loading and "nothing to do" check the weights
    return Path(cfg.out_dir)


def main(argv: list[str] | None = None) -> dict:
    """Train, evaluate and save; returns the final metrics (also written to reports_dir)."""
    cfg, run_seed = load_config(argv)
    seed = training_seed(cfg, run_seed)
    torch.set_num_threads(cfg.num_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)  # same inputs, same weights
    train, val, data_stats, data = open_dataset(
        cfg.dataset, cfg.dataset_config, cfg.revision, cfg.max_length,
        (cfg.holdout_problems, run_seed), cfg.datasets_cache, cfg.keep_rows_without_rollout,
    )  # fmt: skip
    check_tokenizer(cfg, data)
    identity = run_identity(cfg, run_seed, data["fingerprint"])
    done = finished_run(cfg, identity)
    if done is not None:
        write_reports(cfg.reports_dir, done, train_summary(done))  # the same files, rewritten
        return done
    rank, world_size, device = setup_distributed(cfg)
    master = rank == 0
    ddp = world_size > 1
    if train.num_rows < cfg.batch_size or cfg.batch_size < world_size:
        raise ConfigError(
            f"batch_size={cfg.batch_size} needs world_size={world_size} <= batch_size <= "
            f"train rows={train.num_rows}"
        )
    sampler = step_sampler(cfg.sampler, train.problem_id, cfg.batch_size, seed)
    max_steps = cfg.max_steps or max(1, round(cfg.epochs * sampler.steps_per_epoch))
    rates = class_rates(train)
    eval_rows = np.random.default_rng(run_seed).permutation(val.num_rows)[: cfg.eval_max_rows]

    torch.manual_seed(seed)  # head initialisation
    model = ValueModel.from_policy(
        resolve_model(cfg.init_from), dropout=cfg.dropout, attention_dropout=cfg.attention_dropout
    ).to(device, weights_dtype(cfg.precision))
    on_gpu = device.type == "cuda"
    if on_gpu and cfg.gradient_checkpointing:
        model.model.gradient_checkpointing_enable({"use_reentrant": False})
    bf16 = on_gpu and cfg.precision != Precision.FLOAT32
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    optimizer = build_optimizer(model, cfg, device)
    checkpoint_path = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME
    state = load_checkpoint(checkpoint_path, cfg, identity)
    step, curve, totals = 0, [], {"tokens": 0, "padded_tokens": 0, "seconds": 0.0}
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, curve, totals = state["step"], state["curve"], state["totals"]
    trained = torch.compile(model) if cfg.compile else model
    if ddp:
        trained = torch.nn.parallel.DistributedDataParallel(trained)
    model.train()
    # One log line per log interval, with the loss and the ETA (not a second progress line).
    run_started, first_step = time.perf_counter(), step
    interval_loss, interval_steps = 0.0, 0

    while step < max_steps:
        started = time.perf_counter()
        lr = learning_rate(step + 1, cfg, max_steps)  # steps count from 1, as the official loop
        for group in optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(seed * 1_000_003 + step * 101 + rank)  # dropout: a function of the step
        rows = sampler.rows(step)
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
            raise TrainingError(
                f"loss is {step_loss} at step {step} (lr {lr:.3g}): training diverged; lower "
                f"train.max_lr or raise train.warmup_steps"
            )
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
        final = step == max_steps
        evaluating = bool(cfg.eval_every and step % cfg.eval_every == 0) or final
        if master and (step % cfg.log_every == 0 or evaluating):
            # One curve point per log interval: the mean train loss since the last point.
            point = {"step": step, "lr": lr, "train_loss": interval_loss / interval_steps}
            interval_loss, interval_steps = 0.0, 0
            if evaluating:
                summary, _ = evaluate(model, val, eval_rows, cfg, rates, autocast)
                point |= {f"val_{k}": summary[k] for k in ("loss", "brier", "pairwise_accuracy")}
            curve.append(point)
            run_seconds = time.perf_counter() - run_started
            eta = run_seconds / (step - first_step) * (max_steps - step)
            logger.info(
                "step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | padding %.1f%% | eta %s%s",
                step, max_steps, point["train_loss"], lr, tokens * world_size / elapsed,
                100 * (1 - tokens / max(1, padded)), timedelta(seconds=round(eta)),
                "".join(f" | {k} {v:.4f}" for k, v in point.items() if k.startswith("val_")),
            )  # fmt: skip
        if master and cfg.checkpoint_every and (step % cfg.checkpoint_every == 0 or final):
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "identity": identity,
                "curve": curve,
                "totals": totals,
            }
            save_checkpoint(checkpoint_path, state)
        if ddp:
            torch.distributed.barrier()

    result: dict = {}
    if master:
        result = finish(
            model, val, cfg, rates, autocast, curve, totals, data_stats, identity, max_steps
        )
    if ddp:
        torch.distributed.destroy_process_group()
    return result


def finish(
    model, val, cfg, rates, autocast, curve, totals, data_stats, identity, max_steps
) -> dict:
    """Final evaluation on the whole val split; write the model folder, metrics and plots."""
    summary, calibration = evaluate(model, val, np.arange(val.num_rows), cfg, rates, autocast)
    write_model(model, cfg, identity, summary, calibration)
    reports = Path(cfg.reports_dir)
    result = {
        "val": summary,
        "train": {
            "steps": curve[-1]["step"] if curve else 0,
            "max_steps": max_steps,
            "warmup_steps": warmup_steps(cfg, max_steps),
            "tokens": totals["tokens"],
            "tokens_per_s": totals["tokens"] / max(totals["seconds"], 1e-9),
            "padding_fraction": 1 - totals["tokens"] / max(1, totals["padded_tokens"]),
            "final_train_loss": curve[-1]["train_loss"] if curve else None,
            **data_stats.as_dict(),
        },
    }
    write_reports(reports, result, train_summary(result))
    write_metrics(reports / "curve.json", vm_metrics.curve_rows(curve))
    write_metrics(reports / "calibration.json", calibration)
    logger.info(
        "val: loss %.4f (constant %.4f) | brier %.4f (constant %.4f) | auroc %.3f | pairwise %.3f",
        summary["loss"], summary["baseline_loss"], summary["brier"], summary["baseline_brier"],
        summary["auroc"], summary["pairwise_accuracy"],
    )  # fmt: skip
    return result


if __name__ == "__main__":
    run_script(main)
