"""Where tests find things, defined once: the repository, the package, the shared benchmark
files (``$TRACEFACTORY_BENCHMARKS``, or ``../shared/benchmarks`` beside the repository, never
copied into it), and the environment for commands run in a subprocess.

Tests import these by module name (``from locations import REPO``): ``tests/`` is on
``sys.path`` (pytest's rootdir import), while ``conftest.py`` files cannot be imported by name.
"""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "tracefactory"
BENCHMARKS = Path(os.environ.get("TRACEFACTORY_BENCHMARKS", REPO.parent / "shared" / "benchmarks"))


def needs_shared_file(path: Path) -> pytest.MarkDecorator:
    """Skip, saying where the file was looked for and how to provide it, when ``path`` (a shared
    benchmark file) is not there."""
    return pytest.mark.skipif(
        not path.is_file(),
        reason=f"{path} not found: the shared benchmark files are not in the repository; put them "
        f"in ../shared/benchmarks beside it or set TRACEFACTORY_BENCHMARKS to their folder",
    )


def command_env(**extra: str) -> dict[str, str]:
    """This process's environment with this Python's ``bin`` first on PATH, so ``dvc`` and
    ``tracefactory`` in a subprocess are the ones installed beside the running interpreter."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], **extra}
