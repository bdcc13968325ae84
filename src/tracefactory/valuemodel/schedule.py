"""The learning-rate schedule of value-model training: linear warmup, then a cosine to min_lr.

Optimiser steps are counted 1 .. ``max_steps`` (the official loop's ``step``). With
``lr_schedule: official``, step ``it`` uses ``max_lr * it / W`` while ``it < W`` (``W`` warmup
steps), then a cosine from ``max_lr`` at step ``W`` down to exactly ``min_lr_ratio * max_lr`` at the
last step: the official ``training_utils.get_lr`` with ``lr_decay_iters = max_steps``.
``zero_based`` (the embedded default, kept so its reference weights stay as they were) is the same
curve one step later: ``max_lr * it / (W + 1)`` in warmup, ``max_lr`` at step ``W + 1``, ending a
little above ``min_lr``.
"""

from __future__ import annotations

import math

from tracefactory.valuemodel.config import LrSchedule, TrainConfig


def warmup_steps(cfg: TrainConfig, max_steps: int) -> int:
    """max(warmup_steps, round(warmup_fraction * max_steps)), at most max_steps.

    The official trainer's is ``max(round(0.05 * num_steps), 100)``: the paper profile's values.
    """
    return min(max(cfg.warmup_steps, round(cfg.warmup_fraction * max_steps)), max_steps)


def learning_rate(it: int, cfg: TrainConfig, max_steps: int) -> float:
    """The learning rate of optimiser step ``it`` (1-based, as the official loop counts)."""
    min_lr = cfg.max_lr * cfg.min_lr_ratio
    warmup = warmup_steps(cfg, max_steps)
    if cfg.lr_schedule == LrSchedule.ZERO_BASED:
        if it <= warmup:
            return cfg.max_lr * it / (warmup + 1)
        it -= 1  # the official curve, one step later
    elif it < warmup:
        return cfg.max_lr * it / warmup
    progress = min(1.0, (it - warmup) / max(1, max_steps - warmup))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.max_lr - min_lr)
