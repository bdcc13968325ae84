"""The learning-rate schedule equals the official trainer's at every step."""

import math

import pytest

from tracefactory.valuemodel.config import TrainConfig
from tracefactory.valuemodel.schedule import learning_rate, warmup_steps


def official_lr(it: int, max_lr: float, warmup: int, decay_steps: int, min_lr: float) -> float:
    """The official schedule as the paper's trainer states it: step ``it`` counts from 1; linear
    warmup ``max_lr * it / warmup``, then a cosine reaching ``min_lr`` at ``decay_steps``."""
    if it < warmup:
        return max_lr * it / warmup
    ratio = (it - warmup) / (decay_steps - warmup)
    return min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (max_lr - min_lr)


@pytest.mark.parametrize(
    ("max_steps", "settings"),
    [
        (12170, {"max_lr": 1e-4, "warmup_steps": 100, "warmup_fraction": 0.05}),  # the paper's
        (1000, {"max_lr": 1e-4, "warmup_steps": 100, "warmup_fraction": 0.05}),  # floor of 100
        (37, {"max_lr": 1e-3, "warmup_steps": 5, "warmup_fraction": 0.0}),
    ],
)
def test_every_step_equals_the_official_formula(max_steps, settings):
    cfg = TrainConfig(min_lr_ratio=0.1, lr_schedule="official", **settings)
    warmup = max(round(cfg.warmup_fraction * max_steps), cfg.warmup_steps)
    assert warmup_steps(cfg, max_steps) == warmup
    min_lr = 0.1 * cfg.max_lr
    for it in range(1, max_steps + 1):
        expected = official_lr(it, cfg.max_lr, warmup, max_steps, min_lr)
        assert learning_rate(it, cfg, max_steps) == pytest.approx(expected, rel=1e-12), it
    assert learning_rate(1, cfg, max_steps) == pytest.approx(cfg.max_lr / warmup)
    assert learning_rate(warmup, cfg, max_steps) == pytest.approx(cfg.max_lr)
    assert learning_rate(max_steps, cfg, max_steps) == pytest.approx(min_lr, rel=1e-12)


def test_the_paper_profile_warms_up_for_608_of_12170_steps():
    cfg = TrainConfig(max_lr=1e-4, warmup_steps=100, warmup_fraction=0.05)
    assert warmup_steps(cfg, 12170) == 608  # max(round(0.05 * 12170), 100)


def test_zero_based_is_the_same_curve_one_step_later():
    """The embedded default: step s = it - 1 counted from 0, max_lr * (s + 1) / (W + 1)."""
    cfg = TrainConfig(max_lr=1e-3, warmup_steps=5, min_lr_ratio=0.1)
    assert cfg.lr_schedule == "zero_based"
    official = cfg.model_copy(update={"lr_schedule": "official"})
    for it in range(1, 6):
        assert learning_rate(it, cfg, 40) == pytest.approx(1e-3 * it / 6)
    for it in range(7, 41):
        assert learning_rate(it, cfg, 40) == pytest.approx(learning_rate(it - 1, official, 40))
    assert learning_rate(40, cfg, 40) > 1e-4
