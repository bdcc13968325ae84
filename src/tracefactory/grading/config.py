"""The ``verify`` section of params.yaml."""

from __future__ import annotations

from tracefactory.config import Section, WorkerConfig
from tracefactory.grading.grader import GraderConfig


class VerifyConfig(Section):
    """The verify stage: which tables to grade, how, and on how many workers."""

    problems_dir: str = "data/problems"
    """gold answers (schemas/problems.yaml)"""
    rollins_dir: str = "data/rollins"
    """roll-ins to grade (schemas/rollins.yaml)"""
    rollouts_dir: str = "data/rollouts"
    """roll-outs to grade (schemas/rollouts.yaml)"""
    output_dir: str = "data/verdicts"
    """output table (schemas/verdicts.yaml)"""
    grader: GraderConfig = GraderConfig()
    """extraction and comparison settings"""
    use_ray: bool = True
    """False: run in this process (debugging)"""
    workers: WorkerConfig = WorkerConfig(count=1)
    """Ray actors, each with its own Grader pool"""
