"""Validation metrics of a value model: loss, Brier, ECE, AUROC (overall and by relative position in
the roll-out), the constant baseline, and within-problem discrimination.

Each validation row is scored at ``position_bins + 1`` evenly spaced points of its roll-out (the
first roll-out token is position 0, the last token, whose value search uses, is position 1), so
every row weighs the same whatever its length. A point's target is the row's outcome (label == 1).

Within-problem discrimination is the metric that predicts whether search helps: over finished
held-out traces, the fraction of (correct, wrong) pairs of the same problem whose last-token values
are ordered correctly (ties count half). A model that only learned problem difficulty scores ~0.5.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from tracefactory.schemas import TrajectoryClass
from tracefactory.valuemodel.batching import IGNORE_LABEL, micro_batches
from tracefactory.valuemodel.dataset import DatasetSplit
from tracefactory.valuemodel.model import ValueModel


@dataclass(frozen=True)
class SplitPredictions:
    """A value model's predictions on some rows of a split."""

    rows: np.ndarray  # (R,) indices into the split
    sequence_loss: np.ndarray  # (R,) mean token CE over each row's roll-out tokens
    position: np.ndarray  # (R, K) relative roll-out position of each scored point, in [0, 1]
    success_prob: np.ndarray  # (R, K) P(class 1) at those points; [:, -1] is the last-token value


@torch.no_grad()
def predict(
    model: ValueModel,
    split: DatasetSplit,
    rows: np.ndarray,
    position_bins: int,
    token_budget: int,
    autocast: contextlib.AbstractContextManager | None = None,
) -> SplitPredictions:
    """Run the model over ``rows`` in length-grouped batches; collect losses and scored points."""
    model.eval()
    fractions = np.linspace(0.0, 1.0, position_bins + 1)  # (K,)
    loss = np.zeros(len(rows))
    probs = np.zeros((len(rows), len(fractions)))
    slot = {int(row): i for i, row in enumerate(rows)}
    device = model.device
    for batch_rows in micro_batches(rows, split.lengths, token_budget):
        batch = split.batch(batch_rows, device)
        with autocast or contextlib.nullcontext():
            logits, _ = model(batch["input_ids"], batch["attention_mask"])  # (B, T, C)
        loss_b = sequence_losses(logits, batch["targets"])  # (B,)
        success = F.softmax(logits, dim=-1)[..., TrajectoryClass.CORRECT]  # (B, T)
        start = torch.as_tensor(split.supervised_start[batch_rows], device=device)  # (B,)
        count = batch["attention_mask"].sum(-1) - start  # (B,) roll-out tokens
        frac = torch.as_tensor(fractions, device=device, dtype=torch.float32)
        index = start[:, None] + torch.round(frac[None, :] * (count[:, None] - 1)).long()  # (B, K)
        picked = success.gather(1, index)  # (B, K)
        for i, row in enumerate(batch_rows):
            loss[slot[int(row)]] = float(loss_b[i])
            probs[slot[int(row)]] = picked[i].cpu().numpy()
    positions = np.broadcast_to(fractions, probs.shape)
    return SplitPredictions(
        rows=np.asarray(rows), sequence_loss=loss, position=positions, success_prob=probs
    )


def sequence_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The paper's loss per sequence: mean token CE over supervised tokens, ``(B,)`` (0 if none)."""
    token_loss = F.cross_entropy(
        logits.transpose(1, 2), targets.clamp(min=0), reduction="none"
    )  # (B, T)
    supervised = (targets != IGNORE_LABEL).float()  # (B, T)
    count = supervised.sum(-1)  # (B,)
    return (token_loss * supervised).sum(-1) / count.clamp(min=1)


def brier(prob: np.ndarray, outcome: np.ndarray) -> float:
    return float(np.mean((prob - outcome) ** 2))


def reliability(prob: np.ndarray, outcome: np.ndarray, bins: int) -> pl.DataFrame:
    """Equal-width bins of predicted probability: count, mean prediction, observed success rate."""
    frame = pl.DataFrame({"prob": prob, "outcome": outcome.astype(np.float64)})
    return (
        frame.with_columns(
            (pl.col("prob") * bins).floor().clip(0, bins - 1).cast(pl.Int32).alias("bin")
        )
        .group_by("bin")
        .agg(
            pl.len().alias("count"),
            pl.col("prob").mean().alias("mean_prediction"),
            pl.col("outcome").mean().alias("observed_rate"),
        )
        .sort("bin")
    )


def ece(prob: np.ndarray, outcome: np.ndarray, bins: int) -> float:
    """Expected calibration error: count-weighted mean |mean prediction - observed rate|."""
    table = reliability(prob, outcome, bins)
    gap = (table["mean_prediction"] - table["observed_rate"]).abs()
    return float((gap * table["count"]).sum() / len(prob))


def auroc(score: np.ndarray, outcome: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN with one class."""
    positives = int(outcome.sum())
    negatives = len(outcome) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = pl.Series(score).rank(method="average").to_numpy()
    u = ranks[outcome.astype(bool)].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


def pairwise_accuracy(
    value: np.ndarray, label: np.ndarray, problem_id: np.ndarray
) -> tuple[float, int]:
    """Fraction of same-problem (correct, wrong) finished pairs ordered correctly; ties count half.

    Returns ``(accuracy, number of pairs)``; accuracy is NaN when there is no pair.
    """
    frame = pl.DataFrame({"problem_id": problem_id.astype(str), "value": value, "label": label})
    correct = frame.filter(pl.col("label") == TrajectoryClass.CORRECT).select(
        "problem_id", pl.col("value").alias("v1")
    )
    wrong = frame.filter(pl.col("label") == TrajectoryClass.WRONG).select(
        "problem_id", pl.col("value").alias("v0")
    )
    pairs = correct.join(wrong, on="problem_id")
    if pairs.height == 0:
        return float("nan"), 0
    score = (pl.col("v1") > pl.col("v0")).cast(pl.Float64) + 0.5 * (
        pl.col("v1") == pl.col("v0")
    ).cast(pl.Float64)
    return float(pairs.select(score.mean()).item()), pairs.height


def constant_loss(split: DatasetSplit, rows: np.ndarray, class_rates: np.ndarray) -> float:
    """The paper's loss of a model that always predicts the training class frequencies."""
    token_nll = torch.as_tensor(-np.log(np.clip(class_rates, 1e-12, None)))  # (C,)
    losses = []
    for start in range(0, len(rows), 256):  # the split fetches token rows lazily, a chunk at once
        targets = split.batch(rows[start : start + 256])["targets"]  # (B, T)
        supervised = targets != IGNORE_LABEL
        nll = token_nll[targets.clamp(min=0)] * supervised  # (B, T)
        losses.append((nll.sum(-1) / supervised.sum(-1).clamp(min=1)).numpy())
    return float(np.concatenate(losses).mean())


def _scores(prob: np.ndarray, outcome: np.ndarray, baseline: float, bins: int) -> dict[str, float]:
    return {
        "brier": brier(prob, outcome),
        "baseline_brier": brier(np.full_like(prob, baseline), outcome),
        "ece": ece(prob, outcome, bins),
        "baseline_ece": abs(baseline - float(outcome.mean())),
        "auroc": auroc(prob, outcome),
        "points": int(len(prob)),
    }


def summarize(
    predictions: SplitPredictions,
    split: DatasetSplit,
    train_class_rates: np.ndarray,
    calibration_bins: int,
) -> dict:
    """All validation metrics, beside the constant baseline (the train success rate)."""
    rows = predictions.rows
    outcome_row = (split.label[rows] == TrajectoryClass.CORRECT).astype(np.float64)  # (R,)
    outcome = np.repeat(outcome_row[:, None], predictions.success_prob.shape[1], axis=1)  # (R, K)
    base = float(train_class_rates[TrajectoryClass.CORRECT])
    last = predictions.success_prob[:, -1]
    finished = split.label[rows] != TrajectoryClass.INCOMPLETE
    accuracy, pairs = pairwise_accuracy(
        last[finished], split.label[rows][finished], split.problem_id[rows][finished]
    )
    metrics = {
        "loss": float(predictions.sequence_loss.mean()),
        "baseline_loss": constant_loss(split, rows, train_class_rates),
        "train_success_rate": base,
        "val_success_rate": float(outcome_row.mean()),
        "rows": int(len(rows)),
        **_scores(predictions.success_prob.ravel(), outcome.ravel(), base, calibration_bins),
        "last_token": _scores(last, outcome_row, base, calibration_bins),
        "pairwise_accuracy": accuracy,
        "pairwise_pairs": pairs,
        "by_position": {
            f"{frac:.2f}": _scores(
                predictions.success_prob[:, k], outcome_row, base, calibration_bins
            )
            for k, frac in enumerate(predictions.position[0])
        },
    }
    return metrics


def calibration_points(predictions: SplitPredictions, split: DatasetSplit, bins: int) -> list[dict]:
    """Reliability-diagram rows for ``dvc plots``: all scored points, and last tokens only."""
    outcome_row = (split.label[predictions.rows] == TrajectoryClass.CORRECT).astype(np.float64)
    outcome_all = np.repeat(outcome_row[:, None], predictions.success_prob.shape[1], axis=1)
    points = []
    for name, prob, outcome in (
        ("all_positions", predictions.success_prob.ravel(), outcome_all.ravel()),
        ("last_token", predictions.success_prob[:, -1], outcome_row),
    ):
        for record in reliability(prob, outcome, bins).iter_rows(named=True):
            points.append({"points": name, "bin_center": (record["bin"] + 0.5) / bins, **record})
    return points


def curve_rows(points: list[dict]) -> list[dict]:
    """The training curve as plot rows that all carry the same fields, ``None`` where a point has
    no value (``val_*`` between evaluations): ``dvc plots show`` drops a plot whose rows differ
    in their keys, with only a warning."""
    fields = dict.fromkeys(field for point in points for field in point)
    return [{field: point.get(field) for field in fields} for point in points]
