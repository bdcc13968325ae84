"""Every stage by name, and every step's summary: the one list the command line and the tests use.

A table stage (``tracefactory.stage.Stage``) is run by ``run_stage``; ``tracefactory <name>`` builds
it with ``Stage.from_params`` and writes its ``report`` and ``summary``. The evaluate stage runs
inside its recipe, on the engines the recipe built. The dataset export and training are not table
stages; their summaries are listed beside the stages' so every ``summary.json`` is made one way.
"""

from __future__ import annotations

from collections.abc import Callable

from tracefactory.generation.rollin import RollinStage
from tracefactory.generation.rollout import RolloutStage
from tracefactory.grading.stage import VerifyStage
from tracefactory.labels.stage import LabelStage
from tracefactory.problems.stage import ProblemsStage
from tracefactory.search.stage import EvaluateStage
from tracefactory.stage import Stage
from tracefactory.summaries import dataset_summary, train_summary

STAGES: dict[str, type[Stage]] = {
    stage.name: stage
    for stage in (ProblemsStage, RollinStage, RolloutStage, VerifyStage, LabelStage, EvaluateStage)
}
# Every step of dvc.yaml that leaves a summary.json, in pipeline order.
SUMMARIES: dict[str, Callable[[dict], dict]] = {
    **{name: stage.summary for name, stage in STAGES.items() if name != "evaluate"},
    "dataset": dataset_summary,
    "train": train_summary,
    "evaluate": EvaluateStage.summary,
}
