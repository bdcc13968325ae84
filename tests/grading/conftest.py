"""One real grader pool shared by the grading tests (starting workers costs ~1 s each)."""

from collections.abc import Iterator

import pytest

from tracefactory.grading import Grader


@pytest.fixture(scope="session")
def shared_grader() -> Iterator[Grader]:
    with Grader(workers=2, timeout_s=5.0, thinking="none") as grader:
        yield grader
