"""The whole ``params.yaml``: every stage's section, assembled one level above the stages.

``params.yaml`` is the single source DVC tracks. Each stage's section is defined beside its stage
and each stage receives only its own; this module, like the CLI, sees all of them. A bad value
fails at load with the key, the value and what is allowed. A profile (``pipelines/<name>.yaml``)
is a partial params file: ``tracefactory params apply`` merges it into ``params.yaml`` so that DVC
sees, diffs and caches the change like any other edit.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from tracefactory.config import (
    RayConfig,
    Section,
    deep_merge,
    format_validation_error,
    parse_override,
    read_yaml,
    set_path,
)
from tracefactory.dataset.config import DatasetConfig, PublishConfig
from tracefactory.errors import ConfigError
from tracefactory.generation.config import RollinConfig, RolloutConfig
from tracefactory.grading.config import VerifyConfig
from tracefactory.labels.config import LabelConfig
from tracefactory.problems.config import ProblemsConfig
from tracefactory.search.config import EvaluateConfig
from tracefactory.valuemodel.config import TrainConfig


class Params(Section):
    """Every section of ``params.yaml``, one per stage."""

    seed: int = Field(1234, ge=0)  # run seed: every sampling seed, the value model's data order
    # and initialisation derive from it
    ray: RayConfig = RayConfig()
    problems: ProblemsConfig = ProblemsConfig()
    rollin: RollinConfig = RollinConfig()
    rollout: RolloutConfig = RolloutConfig()
    verify: VerifyConfig = VerifyConfig()
    train: TrainConfig = TrainConfig()
    label: LabelConfig = LabelConfig()
    dataset: DatasetConfig = DatasetConfig()
    publish: PublishConfig = PublishConfig()
    evaluate: EvaluateConfig = EvaluateConfig()


def load_params(path: str | Path = "params.yaml", overrides: Iterable[str] = ()) -> Params:
    """Load and validate ``path`` with ``key=value`` overrides applied on top.

    Raises:
        ConfigError: naming each bad key, its value and what is allowed.
    """
    data = read_yaml(path)
    for override in overrides:
        key_path, value = parse_override(override)
        set_path(data, key_path, value)
    try:
        return Params.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(str(path), e)) from None


def apply_profile(params_path: str | Path, profile_path: str | Path) -> Params:
    """Merge a profile from ``pipelines/`` into ``params_path``, validate, and write it back."""
    merged = deep_merge(read_yaml(params_path), read_yaml(profile_path))
    try:
        params = Params.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(format_validation_error(str(profile_path), e)) from None
    header = f"# {Path(profile_path).as_posix()} applied by `tracefactory params apply`\n"
    Path(params_path).write_text(header + yaml.safe_dump(merged, sort_keys=False))
    return params
