"""The package's layering, read from its imports with ``ast``: Core knows no stage, and the stages
depend on each other only as docs/development.md draws it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from locations import PACKAGE

CORE = (
    "config",
    "io",
    "tablereader",
    "tablewriter",
    "datafiles",
    "integrity",
    "schemas",
    "stage",
    "stats",
    "errors",
    "models",
    "ray_cluster",
    "seeds",
    "codeversion",
)
STAGES = (
    "problems",
    "generation",
    "grading",
    "labels",
    "dataset",
    "search",
    "valuemodel",
    "toyworld",
    "recipes",
)
# Which stage packages each stage package may import (every one may import Core).
ALLOWED = {
    "problems": {"toyworld"},
    "generation": set(),
    "grading": set(),
    "labels": set(),
    "dataset": set(),
    "valuemodel": set(),
    "toyworld": set(),
    "search": {"generation", "grading", "valuemodel"},
    "recipes": {"search", "valuemodel"},  # the training and evaluation scripts
}
FORBIDDEN = {
    **{core: set(STAGES) for core in CORE},
    **{stage: set(STAGES) - allowed - {stage} for stage, allowed in ALLOWED.items()},
}


def imported_packages(path: Path) -> set[str]:
    """The ``tracefactory`` modules or subpackages a file imports, top level after the package."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "tracefactory" and len(parts) > 1:
                names.add(parts[1])
    return names


def files_of(unit: str) -> list[Path]:
    folder = PACKAGE / unit
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{unit}.py"]


@pytest.mark.parametrize("unit", sorted(FORBIDDEN))
def test_unit_imports_nothing_it_must_not(unit):
    offending = {
        f"{path.relative_to(PACKAGE)} imports tracefactory.{name}"
        for path in files_of(unit)
        for name in imported_packages(path) & FORBIDDEN[unit]
    }
    assert not offending, sorted(offending)


def test_the_walker_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tracefactory.generation.engine import load_backend\n")
    assert imported_packages(module) == {"generation"}


def test_every_unit_exists_and_every_package_is_placed():
    assert all((PACKAGE / f"{name}.py").is_file() for name in CORE)
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(STAGES)
