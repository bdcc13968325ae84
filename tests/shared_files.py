"""Where tests find the shared evaluation files: ``$TRACEFACTORY_BENCHMARKS``, or
``../shared/benchmarks`` beside the repository. Tests that need them skip when neither exists."""

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(
    os.environ.get("TRACEFACTORY_BENCHMARKS", REPOSITORY.parent / "shared" / "benchmarks")
)
