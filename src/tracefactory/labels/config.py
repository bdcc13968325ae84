"""The ``label`` section of params.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tracefactory.config import Section


class LabelConfig(Section):
    """The label stage: join roll-ins, roll-outs and verdicts into per-token value labels."""

    problems_dir: str = "data/problems"
    """input table (schemas/problems.yaml)"""
    rollins_dir: str = "data/rollins"
    """input table (schemas/rollins.yaml)"""
    rollouts_dir: str = "data/rollouts"
    """input table (schemas/rollouts.yaml)"""
    verdicts_dir: str = "data/verdicts"
    """input table (schemas/verdicts.yaml)"""
    output_dir: str = "data/labels"
    """output table (schemas/labels.yaml)"""
    val_fraction: float = Field(0.1, ge=0, lt=1)
    """share of problems in the value-model val split"""
    val_problems: int | None = Field(None, ge=1)
    """if set: this many problems in val instead of val_fraction, those whose id hashes lowest among
    the problems the drops leave (paper: 500)"""
    problem_splits: list[Literal["train", "val", "test"]] = ["train"]
    """problems-table splits labelled; val/test are held out for evaluation, so the value-model val
    split is carved from train problems by id hash"""
    drop_all_failed: bool = True
    """drop problems none of whose roll-outs is correct (the official OpenR1-VM holds solved
    problems only, its labels suggest; the paper's text does not say)"""
    problems_per_shard: int = Field(512, ge=1)
    """problems per output shard (bounds memory)"""
