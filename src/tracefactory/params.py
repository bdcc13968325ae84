"""The whole ``params.yaml``: every stage's section, assembled one level above the stages.

``params.yaml`` is the single source DVC tracks. Each stage's section is defined beside its stage
and each stage receives only its own; this module, like the CLI, sees all of them. A bad value
fails at load with the key, the value and what is allowed. A profile (``pipelines/<name>.yaml``)
is a partial params file: ``tracefactory params apply`` merges it into ``params.yaml`` so that DVC
sees, diffs and caches the change like any other edit.
"""

from __future__ import annotations

import io
import json
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from ruamel.yaml import YAML, CommentedMap, CommentedSeq

from tracefactory.budget import RunConfig
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

    seed: int = Field(1234, ge=0)
    """run seed: every sampling seed, the value model's data order and initialisation derive from it
    """
    ray: RayConfig = RayConfig()
    run: RunConfig = RunConfig()  # spending limits of the generation stages
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
    """Merge a profile from ``pipelines/`` into ``params_path``, validate, and write it back.

    The file is edited as a YAML document, not rewritten from data: its comments, key order and
    flow style stay, and the keys the profile sets arrive with the profile's own comments.

    Raises:
        ConfigError: the merged params are invalid (``params_path`` is then left unchanged).
    """
    merged = deep_merge(read_yaml(params_path), read_yaml(profile_path))
    try:
        params = Params.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(format_validation_error(str(profile_path), e)) from None
    yaml = _round_trip_yaml()
    document = yaml.load(Path(params_path).read_text())
    _merge_keeping_comments(document, yaml.load(Path(profile_path).read_text()))
    text = io.StringIO()
    yaml.dump(document, text)
    header = f"# {Path(profile_path).as_posix()} applied by `tracefactory params apply`\n"
    body = text.getvalue()
    Path(params_path).write_text(body if body.startswith(header) else header + body)
    return params


def _round_trip_yaml() -> YAML:
    yaml = YAML()  # round-trip mode: comments and layout survive a load and dump
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.add_representer(type(None), _represent_null)  # `null`, as written, not blank
    return yaml


def _represent_null(representer: Any, _: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _merge_keeping_comments(target: CommentedMap, update: CommentedMap) -> None:
    """Merge ``update`` into ``target`` in place: mappings recursively, anything else replaced."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_keeping_comments(target[key], value)
            continue
        target[key] = value
        comment = update.ca.items.get(key)
        if comment is not None:
            target.ca.items[key] = comment
        elif _is_block(value):  # a comment on the old value's line would now sit above the block
            target.ca.items.pop(key, None)


def _is_block(value: Any) -> bool:
    return isinstance(value, CommentedMap | CommentedSeq) and not value.fa.flow_style()


def describe_params(params: Params) -> str:
    """Every key of ``params`` with its value, its default when different, and what it means."""
    return "\n".join(_describe(params, type(params), ""))


def _describe(value: BaseModel | None, section: type[BaseModel], prefix: str) -> list[str]:
    """Lines for one section; list-of-section fields list their item keys as ``key[].field``."""
    lines = []
    for name, field in section.model_fields.items():
        key = f"{prefix}{name}"
        inner = _section_of(field.annotation)
        is_list = typing.get_origin(field.annotation) is list
        if inner is not None and not is_list:
            lines += _describe(
                getattr(value, name) if value is not None else None, inner, key + "."
            )
            continue
        shown = _json(getattr(value, name)) if value is not None else None
        setting = f"{key} = {shown}" if shown is not None else f"{key}"
        if field.is_required():
            setting += "  (required)"
        elif shown is None or shown != _json(field.get_default(call_default_factory=True)):
            setting += f"  (default {_json(field.get_default(call_default_factory=True))})"
        meaning = " ".join((field.description or "").split())  # a docstring may wrap
        lines += [setting, f"    {meaning or 'no description'}"]
        if inner is not None:
            lines += _describe(None, inner, key + "[].")
    return lines


def _section_of(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds (directly, optionally, or as list items), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _section_of(arg)
        if found is not None:
            return found
    return None


def _json(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    return json.dumps(value, default=str)
