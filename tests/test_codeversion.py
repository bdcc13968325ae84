"""The code version a build records: the last commit that changed the package folder, and
whether the folder has uncommitted edits; nothing outside a checkout."""

import subprocess
from pathlib import Path

from tracefactory.codeversion import code_version


def _git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    result = subprocess.run(
        ["git", *identity, "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_the_commit_is_the_last_one_that_changed_the_package_folder(tmp_path):
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "code")
    code_commit = _git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "README.md").write_text("docs\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "docs only")

    version = code_version(package)
    assert version.source_commit == code_commit  # a docs commit leaves the code's version
    assert version.head_commit == _git(tmp_path, "rev-parse", "HEAD") != code_commit
    assert not version.uncommitted_changes
    assert code_commit in version.describe() and "uncommitted" not in version.describe()

    (package / "a.py").write_text("x = 2\n")
    edited = code_version(package)
    assert edited.source_commit == code_commit and edited.uncommitted_changes
    assert "plus uncommitted changes" in edited.describe()
    (tmp_path / "README.md").write_text("more docs\n")  # outside the folder: not its code
    (package / "a.py").write_text("x = 1\n")
    assert not code_version(package).uncommitted_changes


def test_outside_a_checkout_only_the_package_version_is_recorded(tmp_path):
    version = code_version(tmp_path)
    assert version.source_commit is None and version.head_commit is None
    assert "no commit recorded" in version.describe()
