"""The parts of configuration every stage shares: the ``Section`` base, where work runs (Ray,
workers), benchmarks, ``key=value`` overrides, YAML reading and the params hash.

Each stage's own section is a frozen pydantic model defined beside the stage;
``tracefactory.params`` assembles them into the whole ``params.yaml``. This module knows no stage.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from tracefactory.errors import ConfigError


class Section(BaseModel):
    """A params section: immutable, and unknown keys are errors (a typo fails loudly at load).

    Numbers are checked as numbers: ``inf`` and ``nan`` are refused (``temperature=inf`` would
    otherwise reach the sampler), and so is a boolean where a number belongs (pydantic would read
    ``true`` as 1). Strings such as ``1e-3`` still convert: YAML reads them as text.

    Each field's meaning is the docstring under it (pydantic's attribute docstrings), which
    ``tracefactory params show`` prints beside the field's value and default.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if _wants_number(annotation):
                raise ValueError("a number is required, not a boolean")
        return value


def _wants_number(annotation: Any) -> bool:
    """True for ``int``/``float`` fields (optionally ``| None``) that do not also take a bool."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) else (annotation,)
    if typing.get_origin(annotation) not in (None, typing.Union, types.UnionType):
        return False
    return bool({int, float} & set(options)) and bool not in options


class RayConfig(Section):
    """Where Ray runs the parallel stages."""

    address: str | None = None
    """None: start a local Ray; "auto", "ray://head:10001": join one"""
    num_cpus: int | None = Field(None, ge=1)
    """CPUs of a local Ray (None: all); unused with address"""
    no_progress_timeout_s: int = Field(600, ge=10)
    """fail a stage when no shard finishes this long"""
    start_timeout_s: int = Field(900, ge=1)
    """fail a stage when its workers (engines) are not ready this long after start: an engine that
    never loads, or no free resources to place them"""


class WorkerConfig(Section):
    """How many workers a stage runs and what each one reserves."""

    count: int = Field(2, ge=1)
    """workers (Ray actors); each owns one engine"""
    num_cpus: float = Field(1.0, gt=0)
    """CPUs reserved per worker (fractions allowed)"""
    num_gpus: float = Field(0.0, ge=0)
    """GPUs per worker (vLLM: its tensor-parallel size)"""
    resources: dict[str, float] = {}
    """custom Ray resources per worker, e.g. {gpu_node: 1} to pin workers to the nodes started with
    that resource"""
    max_shard_attempts: int = Field(3, ge=1)
    """a shard whose worker dies this often fails the stage"""


class BenchmarkConfig(Section):
    """An evaluation set: decontamination removes its problems, evaluation measures on them.

    One definition for both uses, so the benchmark a run evaluates on is the one its training
    problems were decontaminated against.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """label in reports and plots"""
    path: str | None = None
    """local .jsonl/.parquet/.csv (or glob) or Hub id; evaluation only: None means the problems
    table's test split"""
    subset: str | None = None
    """Hub config name"""
    split: str = "train"
    """split to read (local files: train; Hub MATH-500: test)"""
    problem_column: str = "problem"
    """column holding the problem text"""
    answer_column: str = "answer"
    r"""column holding the gold answer (LaTeX, no \\boxed)"""
    limit: int | None = Field(None, ge=1)
    """first N problems (None: all, or evaluate.max_problems)"""


def one_line_validation_error(source: str, error: ValidationError) -> str:
    """``error`` as one line naming each bad field: ``grading.workers = 0: <why>; ...`` (the
    fields alone when ``source`` is empty)."""
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in (source, *item["loc"]) if part != "")
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        problems.append(f"{key}{shown}: {item['msg']}")
    return "; ".join(problems)


def format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid parameters"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        lines.append(f"  {key}{shown}: {item['msg']}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse a ``dotted.key=value`` override; the value is YAML (``3``, ``true``, ``[1, 2]``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. rollin.samples=4)")
    return key.strip().split("."), yaml.safe_load(value)


def deep_merge(base: dict, update: dict) -> dict:
    """``base`` with ``update`` merged in, recursively for nested mappings (lists are replaced)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def set_path(data: dict, path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {'.'.join(path)}: {part!r} is not a section")
        node = child
    node[path[-1]] = value


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing aliases (``*name``): params never need them, and nested
    aliases make a few lines expand to gigabytes (an "alias bomb") once the params are walked."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(f"line {mark.line + 1}: YAML aliases (*name) are not allowed")
        return super().compose_node(parent, index)


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with errors that name the file.

    Raises:
        ConfigError: the file is missing, not YAML, not a mapping, or uses aliases.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file {path} does not exist")
    try:
        data = yaml.load(path.read_text(), Loader=_NoAliasLoader) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, not {type(data).__name__}")
    return data


def params_hash(*sections: BaseModel | dict | int | str) -> str:
    """Short stable hash of the params a stage's output depends on (stored in table metadata).

    Locations (keys ending in ``_dir`` or ``_dirs``) are left out: where a table lives is not what
    it contains, and an input table's content enters through its fingerprint instead, so the same
    folder spelled ``./data/rollins`` or moved elsewhere leaves finished work valid.
    """
    payload = [
        _without_locations(s.model_dump(mode="json") if isinstance(s, BaseModel) else s)
        for s in sections
    ]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _without_locations(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_locations(v) for k, v in value.items() if not k.endswith(("_dir", "_dirs"))
        }
    if isinstance(value, list):
        return [_without_locations(v) for v in value]
    return value
