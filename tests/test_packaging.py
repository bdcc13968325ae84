"""The wheel is the package a user installs: it must hold the data the code reads at run time
(the schemas, the shipped policies) beside every module and recipe, and work without the
repository around it (``_schemas`` is a symlink in the checkout; the wheel holds the files)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from locations import PACKAGE, REPO

POLICY_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def _run(args: list[str], cwd: Path) -> None:
    run = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{args} failed:\n{run.stdout[-2000:]}\n{run.stderr}"


@pytest.fixture(scope="module", params=["checkout", "sdist"])
def wheel(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds offline (hatchling from the dev extra) from this checkout, or from
    its sdist, as pip does when it installs the sdist (an sdist keeps no symlinks)."""
    out = tmp_path_factory.mktemp(f"wheel-{request.param}")
    source = REPO
    if request.param == "sdist":
        _run([sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(out)], REPO)
        (source,) = out.glob("tracefactory-*.tar.gz")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(out), str(source)],
        out,
    )  # fmt: skip
    (path,) = out.glob("tracefactory-*.whl")
    return path


def test_wheel_holds_every_schema_module_recipe_and_policy(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    schemas = {f"tracefactory/_schemas/{p.name}" for p in (REPO / "schemas").glob("*.yaml")}
    assert len(schemas) >= 7 and schemas <= names, sorted(schemas - names)
    modules = {
        f"tracefactory/{p.relative_to(PACKAGE).as_posix()}"
        for p in PACKAGE.rglob("*.py")
        if "__pycache__" not in p.parts
    }  # recipes included: they are modules of the package
    assert modules <= names, sorted(modules - names)
    policies = {
        f"tracefactory/toyworld/{d}/{f}" for d in ("policy", "policy-weak") for f in POLICY_FILES
    }
    assert policies <= names, sorted(policies - names)
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]


def test_installed_wheel_finds_its_schemas_and_shipped_policy(wheel: Path, tmp_path: Path):
    """Unpacked alone on sys.path (no checkout, no symlink), the package loads a schema and
    resolves ``tracefactory:tiny`` to a folder inside itself."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "import tracefactory, tracefactory.schemas as s, tracefactory.models as m;"
        "print(tracefactory.__file__); print(len(s.load_schema('labels').columns));"
        "print(m.resolve_model('tracefactory:tiny'))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PATH": "", "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    package_file, columns, tiny = run.stdout.splitlines()
    assert Path(package_file).is_relative_to(site)
    assert int(columns) > 0
    assert Path(tiny).is_relative_to(site) and (Path(tiny) / "model.safetensors").is_file()
