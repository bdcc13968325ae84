"""Which code built an artifact: the package version and, in a git checkout, the source commit.

The commit named is the last one that changed the package's own folder (``src/tracefactory``),
not the checkout's HEAD: a commit that only touches the README or dvc.lock leaves the code, and
so the artifact's bytes, as they were, and identical inputs must give identical outputs. Edits
not yet committed are flagged (``uncommitted_changes``): the commit alone then does not describe
the code. The checkout's HEAD and the wall-clock time belong to a run record, not to the artifact.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tracefactory import __version__

PACKAGE_DIR = Path(__file__).resolve().parent
_GIT_TIMEOUT_S = 30


@dataclass(frozen=True)
class CodeVersion:
    """The code of a build, as the provenance record states it."""

    package: str  # tracefactory's version
    source_commit: str | None  # last commit changing the package folder; None: not a checkout
    uncommitted_changes: bool  # the package folder differs from that commit
    head_commit: str | None  # the checkout's HEAD (for run records: it moves with docs commits)

    def describe(self) -> str:
        """One line for a provenance file; stable for identical code."""
        if self.source_commit is None:
            return (
                f"tracefactory {self.package} (no commit recorded: not run from a git checkout "
                "that git can read)"
            )
        changes = " plus uncommitted changes" if self.uncommitted_changes else ""
        return (
            f"tracefactory {self.package}, source at git commit `{self.source_commit}`{changes} "
            "(the last commit that changed the package folder)"
        )


def code_version(source: Path = PACKAGE_DIR) -> CodeVersion:
    """The version of the code in ``source`` (the package folder, unless a test names another).

    Outside a git checkout, or without a working git, the commits are None: the package version
    is then all there is to say.
    """
    last = _git(source, "log", "-1", "--format=%H", "--", ".")
    if not last:
        return CodeVersion(__version__, None, False, None)
    status = _git(source, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    return CodeVersion(__version__, last, bool(status), _git(source, "rev-parse", "HEAD"))


def _git(folder: Path, *args: str) -> str | None:
    """A git command's output in ``folder``, stripped; None if it fails (no git, no checkout)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None
