"""The whole ``params.yaml``: every stage's section, assembled one level above the stages.

``params.yaml`` is the single source DVC tracks. Each stage's section is defined beside its stage
and each stage receives only its own; this module, like the CLI, sees all of them. A bad value
fails at load with the key, the value and what is allowed. A profile (``pipelines/<name>.yaml``)
is a partial params file: ``tracefactory params apply`` merges it into ``params.yaml`` so that DVC
sees, diffs and caches the change like any other edit.
"""

from __future__ import annotations

import difflib
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
        ConfigError: naming each bad key, its value, what is allowed and where the value came
            from (the file or the ``--set`` that gave it).
    """
    data = read_yaml(path)
    sources = KeySources()
    sources.add(data, str(path))
    defaults = Params().model_dump(mode="json")
    for override in overrides:
        key_path, value = parse_override(override)
        set_path(data, key_path, value, defaults)
        sources.add_path(key_path, value, f"--set {override}")
    return validate_params(data, sources)


def apply_profile(params_path: str | Path, profile_path: str | Path) -> Params:
    """Merge a profile from ``pipelines/`` into ``params_path``, validate, and write it back.

    The file is edited as a YAML document, not rewritten from data: its comments, key order and
    flow style stay, and the keys the profile sets arrive with the profile's own comments.

    Raises:
        ConfigError: the merged params are invalid (``params_path`` is then left unchanged).
    """
    base, profile = read_yaml(params_path), read_yaml(profile_path)
    sources = KeySources()
    sources.add(base, str(params_path))
    sources.add(profile, str(profile_path))
    params = validate_params(deep_merge(base, profile), sources)
    yaml = _round_trip_yaml()
    document = yaml.load(Path(params_path).read_text())
    _merge_keeping_comments(document, yaml.load(Path(profile_path).read_text()))
    text = io.StringIO()
    yaml.dump(document, text)
    header = f"# {Path(profile_path).as_posix()} applied by `tracefactory params apply`\n"
    body = text.getvalue()
    Path(params_path).write_text(body if body.startswith(header) else header + body)
    return params


PROFILES_DIR = Path("pipelines")


def resolve_profile(profile: str | Path) -> Path:
    """A profile file: ``profile`` itself, or ``pipelines/<profile>.yaml`` for a bare name.

    Raises:
        ConfigError: neither exists (naming the profiles there are).
    """
    for candidate in (Path(profile), PROFILES_DIR / f"{profile}.yaml"):
        if candidate.is_file():
            return candidate
    names = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")) if PROFILES_DIR.is_dir() else []
    close = difflib.get_close_matches(str(profile), names, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    choices = (
        f"the profiles in {PROFILES_DIR}/ are {', '.join(names)}"
        if names
        else (f"there is no {PROFILES_DIR}/ folder here")
    )
    raise ConfigError(f"profile {str(profile)!r} not found: {hint}give a file; {choices}")


class KeySources:
    """Which source (a params file, a profile, a ``--set``) gave each key, the last one winning.

    An error then names where the bad value came from, not the file it was merged into.
    """

    def __init__(self) -> None:
        self._by_path: dict[tuple[str | int, ...], str] = {}

    def add(self, data: Any, source: str, prefix: tuple[str | int, ...] = ()) -> None:
        """Record ``source`` for ``prefix`` and every key below it in ``data``."""
        if prefix:
            self._by_path[prefix] = source
        items = data.items() if isinstance(data, dict) else []
        items = enumerate(data) if isinstance(data, list) else items
        for key, value in items:
            self.add(value, source, (*prefix, key))

    def add_path(self, path: list[str | int], value: Any, source: str) -> None:
        """Record ``source`` for one set path (and what its value holds below it)."""
        stale = [p for p in self._by_path if p[: len(path)] == tuple(path)]
        for p in stale:
            del self._by_path[p]
        self.add(value, source, tuple(path))

    def of(self, loc: tuple[str | int, ...]) -> str:
        """The source of ``loc``: of the nearest enclosing key a source gave, else of the last
        key given below it (``--set rolin.x=1`` is the source of the unknown section ``rolin``).
        """
        for end in range(len(loc), 0, -1):
            if loc[:end] in self._by_path:
                return self._by_path[loc[:end]]
        below = [s for p, s in self._by_path.items() if p[: len(loc)] == loc]
        return below[-1] if below else "the defaults"


def validate_params(data: dict, sources: KeySources) -> Params:
    """``Params`` from merged ``data``; a ``ConfigError`` with one line per bad key otherwise."""
    try:
        return Params.model_validate(data)
    except ValidationError as e:
        lines = [_error_line(item, sources) for item in e.errors()]
        raise ConfigError("\n".join(lines)) from None


def _error_line(item: Any, sources: KeySources) -> str:
    loc = tuple(item["loc"])
    key = format_key(loc)
    source = sources.of(loc)
    if item["type"] == "extra_forbidden":
        return f"{source}: unknown key {key}; {_suggestion(loc)}"
    value = item.get("input")
    shown = "" if isinstance(value, dict) else f" = {value!r}"
    return f"{source}: {key}{shown}: {item['msg']}"


def format_key(loc: Iterable[str | int]) -> str:
    """``("rollin", "policies", 0, "name")`` as ``rollin.policies[0].name``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text


def _suggestion(loc: tuple[str | int, ...]) -> str:
    """A "did you mean" for an unknown key: a sibling spelt alike, else any key of that name."""
    section = _section_at(loc[:-1])
    name = str(loc[-1])
    close = difflib.get_close_matches(name, list(section.model_fields), n=1) if section else []
    if close:
        return f"did you mean {format_key((*loc[:-1], close[0]))}?"
    elsewhere = [k for k in every_key() if k.rsplit(".", 1)[-1] == name]
    if elsewhere:
        return f"did you mean {' or '.join(elsewhere[:3])}?"
    command = f"tracefactory params show {loc[0] if len(loc) > 1 else ''}".strip()
    return f"`{command}` lists the keys"


def _section_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The section model that holds the keys under ``loc`` (list indexes step into items)."""
    section: type[BaseModel] | None = Params
    for part in loc:
        if section is None:
            return None
        if isinstance(part, int):
            continue
        field = section.model_fields.get(part)
        section = _section_of(field.annotation) if field is not None else None
    return section


def every_key() -> list[str]:
    """Every settable key, list items as ``key[].field``, in ``params show`` order."""
    return [line.split(" ", 1)[0] for line in _describe(None, Params, "") if line[0] != " "]


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


def describe_params(params: Params, section: str = "") -> str:
    """Every key of ``params`` (or of one ``section``, e.g. ``rollin`` or ``rollin.sampling``)
    with its value, its default when different, and what it means.

    Raises:
        ConfigError: ``section`` is not a section or key of the params.
    """
    lines = _describe(params, type(params), "")
    pairs = [lines[i : i + 2] for i in range(0, len(lines), 2)]  # a setting, then its meaning
    _check_section(section)
    shown = [pair for pair in pairs if _within(pair[0].split(" ", 1)[0], section)]
    return "\n".join(line for pair in shown for line in pair)


def params_json(params: Params, section: str = "") -> str:
    """The resolved params (or one ``section`` of them) as JSON."""
    _check_section(section)
    value: Any = params.model_dump(mode="json")
    for part in section.split(".") if section else []:
        value = value[part]
    return json.dumps(value, indent=2)


def _within(key: str, section: str) -> bool:
    return not section or key == section or key.startswith((f"{section}.", f"{section}[]"))


def _check_section(section: str) -> None:
    if not section:
        return
    keys = [key for key in every_key() if "[" not in key]  # list items have no section of own
    prefixes = {key.rsplit(".", depth)[0] for key in keys for depth in range(key.count(".") + 1)}
    if section in prefixes:
        return
    close = difflib.get_close_matches(section, sorted(prefixes), n=1)
    top = ", ".join(Params.model_fields)
    hint = f"did you mean {close[0]}?" if close else f"the sections are {top}"
    raise ConfigError(f"params have no section or key {section!r}; {hint}")


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
