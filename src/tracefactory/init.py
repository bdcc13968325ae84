"""``tracefactory init DIR``: a DVC project for the installed package, outside a checkout.

The project is what a checkout holds around the code: ``dvc.yaml`` (every stage), ``params.yaml``
(the embedded default), the profiles in ``pipelines/``, the plot templates in ``plots/`` and a
``.gitignore``; ``git init`` and ``dvc init`` run where the folder is not already a repository.
The stages' dependencies on the source tree (``src/tracefactory``, ``schemas``, ``train/``) are
left out, since the code is the installed package: after upgrading it, ``dvc repro --force``
reruns what the new code would change.

In a wheel the files ship under ``tracefactory/_project`` (``pyproject.toml`` force-includes
them); in a checkout they are read from the repository itself.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tracefactory import __version__
from tracefactory.errors import ConfigError

PROJECT_FILES = ("dvc.yaml", "params.yaml", ".gitignore")
PROJECT_FOLDERS = ("pipelines", "plots")
SOURCE_DEPS = ("src/", "schemas", "train/")  # a checkout's code, the installed package outside


def project_source() -> Path:
    """Where the project files are: the wheel's ``_project`` folder, else the checkout's root."""
    packaged = Path(__file__).parent / "_project"
    checkout = Path(__file__).parents[2]
    for folder in (packaged, checkout):
        if (folder / "dvc.yaml").is_file():
            return folder
    raise ConfigError(
        f"this tracefactory install has no project files ({packaged} is missing): reinstall it"
    )


def init_project(target: str | Path) -> list[str]:
    """Write the project into ``target`` (created); return what was done, one line each.

    Raises:
        ConfigError: ``target`` already holds a ``dvc.yaml`` or ``params.yaml``.
    """
    target = Path(target)
    existing = [name for name in ("dvc.yaml", "params.yaml") if (target / name).exists()]
    if existing:
        raise ConfigError(
            f"{target} already holds {' and '.join(existing)}: init writes a new project; "
            f"choose an empty folder, or `tracefactory params apply` a profile there instead"
        )
    source = project_source()
    target.mkdir(parents=True, exist_ok=True)
    done = []
    for name in PROJECT_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    pipeline = yaml.safe_load((source / "dvc.yaml").read_text())
    (target / "dvc.yaml").write_text(_without_source_deps(pipeline))
    for folder in PROJECT_FOLDERS:
        shutil.copytree(source / folder, target / folder, dirs_exist_ok=True)
    done.append(f"wrote {', '.join((*PROJECT_FILES, *PROJECT_FOLDERS))} to {target}")
    if not (target / ".git").exists():
        _run(["git", "init", "-q"], target)
        done.append("git init")
    if not (target / ".dvc").exists():
        _run(["dvc", "init", "-q"], target)
        done.append("dvc init")
    return done


def _without_source_deps(pipeline: dict) -> str:
    """``dvc.yaml`` with the source-tree dependencies dropped."""
    header = (
        f"# The pipeline of tracefactory {__version__}, written by `tracefactory init`: each\n"
        "# stage is the tracefactory subcommand of the same name, reading params.yaml.\n"
    )
    for stage in pipeline.get("stages", {}).values():
        deps = [d for d in stage.get("deps", []) if not str(d).startswith(SOURCE_DEPS)]
        if deps:
            stage["deps"] = deps
        else:
            stage.pop("deps", None)
    return header + yaml.safe_dump(pipeline, sort_keys=False, width=100)


def _run(command: list[str], folder: Path) -> None:
    try:
        subprocess.run(command, cwd=folder, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise ConfigError(f"`{command[0]}` is not installed: install it, then rerun") from None
    except subprocess.CalledProcessError as e:
        raise ConfigError(f"`{' '.join(command)}` failed in {folder}: {e.stderr.strip()}") from e
