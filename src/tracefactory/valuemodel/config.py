"""``TrainConfig``: the ``train:`` section of params.yaml (value-model training).

Defaults are the embedded default: a small model trained on CPU in minutes. The paper's values
(arXiv 2505.17373, appendix; official ``scripts/train.sh``) are given in each comment and set by
``pipelines/paper.yaml``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from tracefactory.config import Section


class ValueTarget(StrEnum):
    """What each roll-out token is trained to predict."""

    TOKEN_LABELS = "token_labels"  # paper: 3-class CE against the trajectory's class at every token
    BRANCH_VALUE = "branch_value"  # binary CE of P(class 1) vs the branch's sibling success rate


class Sampler(StrEnum):
    """Which rows each optimiser step takes (valuemodel/batching.py)."""

    ROWS = "rows"  # batch_size rows from a per-epoch permutation of all rows
    PROBLEM_PAIRS = "problem_pairs"  # batch_size / 2 problems, two random roll-outs of each
    OFFICIAL = "official"  # the official trainer's: fixed adjacent pairs (2k, 2k+1) of one
    # problem's roll-outs, pairs shuffled per epoch, every row once an epoch


class LrSchedule(StrEnum):
    """How warmup and cosine are indexed over the optimiser steps 1 .. max_steps (schedule.py)."""

    OFFICIAL = "official"  # max_lr * it / W in warmup, max_lr at W, exactly min_lr at the last
    ZERO_BASED = "zero_based"  # the same one step later: max_lr * it / (W + 1), max_lr at W + 1,
    # ends slightly above min_lr (the embedded default's reference weights were trained so)


class Precision(StrEnum):
    """How weights are stored and computed in training."""

    FLOAT32 = "float32"  # float32 weights and compute
    BF16_AUTOCAST = "bf16_autocast"  # float32 weights and AdamW, bfloat16 autocast on GPU (CPU:
    # float32)
    BF16 = "bf16"  # the official trainer's: weights stored in bfloat16, AdamW on bfloat16
    # parameters (and its state), bfloat16 autocast on GPU; on CPU too


class ResumeMode(StrEnum):
    """What to do with a checkpoint in checkpoint_dir."""

    AUTO = "auto"  # resume when it was written by this run (params, data, init); else start fresh
    REQUIRED = "required"  # resume, or fail saying why the checkpoint does not fit
    NEVER = "never"  # always start fresh (the checkpoint is overwritten)


class TrainConfig(Section):
    """Value-model training: data, model, optimiser, schedule, evaluation and outputs."""

    # --- inputs and outputs
    dataset: str = "data/dataset"
    """the published dataset: an exported folder or a Hub dataset id"""
    dataset_config: str = "default"
    """default (one row per roll-out) or openr1_vm (per problem)"""
    revision: str | None = None
    """Hub revision of a dataset id (None: main)"""
    holdout_problems: int = Field(500, ge=1)
    """held out for validation when the dataset has no validation split (the paper's OpenR1-VM);
    drawn by the run seed"""
    datasets_cache: str | None = None
    """where `datasets` keeps its Arrow copy (None: HF default)"""
    init_from: str = "tracefactory:tiny"
    """policy folder or tracefactory:tiny (LM head dropped)"""
    out_dir: str = "models/value_model"
    """final HF folder: config, safetensors, tokenizer"""
    checkpoint_dir: str = "checkpoints/value_model"
    """checkpoint.pt; not a DVC output"""
    license: str = "apache-2.0"
    """Hub license id in the model card's front matter"""
    reports_dir: str = "reports/train"
    """metrics.json, curve.json, calibration.json"""
    # --- data
    target: ValueTarget = ValueTarget.TOKEN_LABELS
    """paper: token_labels"""
    max_length: int = Field(1024, ge=2)
    """longer roll-outs are cut, roll-in kept (paper: 16384)"""
    keep_rows_without_rollout: bool = False
    """rows with no roll-out token left after the cut (roll-in alone fills max_length, or an empty
    roll-out): true trains on them with zero loss, counted in the step's mean, as the official
    trainer; false drops them, counted"""
    # --- batch
    sampler: Sampler = Sampler.ROWS
    """rows, problem_pairs or official (see Sampler)"""
    batch_size: int = Field(64, ge=1)
    """rows per optimiser step, all ranks (paper: 1024)"""
    micro_batch_tokens: int = Field(8192, ge=1)
    """padded tokens per forward per rank (memory)"""
    micro_batch_overhead_tokens: int = Field(512, ge=0)
    """cost of a forward pass, in padded tokens"""
    # --- optimisation
    seed: int | None = Field(None, ge=0)
    """training seed: head init, data order, dropout (None: the run seed); it changes the weights
    only, never the data stages or the validation split"""
    epochs: float = Field(2.0, gt=0)
    """passes over the train split (paper: 5)"""
    max_steps: int | None = Field(None, ge=1)
    """optimiser steps; None: from epochs (paper: 12170)"""
    max_lr: float = Field(1e-3, gt=0)
    """peak learning rate (paper: 1e-4)"""
    lr_schedule: LrSchedule = LrSchedule.ZERO_BASED
    """official: official (see LrSchedule)"""
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    """cosine floor as a fraction of max_lr (paper: 0.1)"""
    warmup_steps: int = Field(20, ge=0)
    """linear warmup steps, at least (paper: 100); at most max_steps"""
    warmup_fraction: float = Field(0.0, ge=0, lt=1)
    """warmup = max(warmup_steps, round(warmup_fraction * steps)) (paper: 0.05)"""
    beta1: float = Field(0.9, gt=0, lt=1)
    """AdamW beta1 (paper: 0.9)"""
    beta2: float = Field(0.95, gt=0, lt=1)
    """AdamW beta2 (paper: 0.95)"""
    weight_decay: float = Field(0.1, ge=0)
    """on matrices only; norms, biases untouched (paper: 0.1)"""
    eps: float = Field(1e-6, gt=0)
    """AdamW epsilon (paper: 1e-6)"""
    grad_clip: float = Field(5.0, ge=0)
    """max global grad norm; 0 disables (paper: 5.0)"""
    dropout: float = Field(0.05, ge=0, lt=1)
    """on hidden states before the head (paper: 0.05)"""
    attention_dropout: float = Field(0.05, ge=0, lt=1)
    """in the backbone's attention (paper: 0.05)"""
    # --- hardware
    device: str = "auto"
    """auto (cuda if available), cpu, cuda, cuda:1"""
    precision: Precision = Precision.BF16_AUTOCAST
    """float32, bf16_autocast or bf16 (official)"""
    gradient_checkpointing: bool = True
    """on GPU only: recompute activations to fit long sequences"""
    compile: bool = False
    """torch.compile the model (GPU; slow to start)"""
    num_threads: int = Field(1, ge=1)
    """torch CPU threads per process (2-core machines: 1)"""
    # --- evaluation, logging, checkpoints
    eval_every: int = Field(100, ge=0)
    """steps between validation passes; 0: only at the end"""
    eval_max_rows: int = Field(2000, ge=1)
    """val rows of periodic evals (final eval: all)"""
    position_bins: int = Field(10, ge=1)
    """bins of relative roll-out position for metrics by position"""
    calibration_bins: int = Field(10, ge=2)
    """equal-width bins of the ECE and reliability plot"""
    checkpoint_every: int = Field(100, ge=0)
    """steps between checkpoints; 0: none"""
    resume: ResumeMode = ResumeMode.AUTO
    """auto, required or never (see ResumeMode)"""
    log_every: int = Field(10, ge=1)
    """steps between log lines"""
