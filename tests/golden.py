"""Golden digests: each stage's rows on its miniature fixture, recorded per row-semantics version.

A code change that changes what a stage writes must bump the stage's ``version`` (its finished
shards are then recomputed; see ``tracefactory.stage.Stage``) and record the new digest here; a
change that keeps the digest (a refactor) keeps finished work. The data stages' fixture is the
miniature chain of ``test_reproducible.py``, the evaluate stage's the miniature evaluation of
``search/test_evaluate_stage.py``. The digests are of CPU runs of the tiny shipped policy: the
policy is an input, not row semantics, so retraining it records new digests under the same versions
(its files are in every generating stage's fingerprint, which already redoes finished shards).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tracefactory.io import TableReader
from tracefactory.schemas import load_schema
from tracefactory.stages import STAGES

# Stage -> (version, digest of its rows on its fixture).
GOLDEN = {
    "problems": (1, "e097a4ace9a957d0"),
    "rollin": (1, "65ed3ed2e72a8221"),
    "rollout": (1, "07c06d5eff3c80f7"),
    "verify": (3, "43076c583ad9010f"),  # version 3 since grader 4
    "label": (1, "87fbf0233b6c53d6"),
    "evaluate": (2, "162f031620cc4912"),
}


def rows_digest(folder: Path, schema: str) -> str:
    """A digest of a table's rows in key order, independent of shards and file encoding."""
    frame = TableReader(folder).scan().collect().sort(load_schema(schema).key)
    text = json.dumps(frame.to_arrow().to_pylist(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_golden(name: str, folder: Path) -> None:
    """Fail unless the stage's table in ``folder`` has the digest recorded for its version."""
    stage = STAGES[name]
    version, digest = stage.version, rows_digest(folder, stage.output_schema)
    assert (version, digest) == GOLDEN[name], (
        f"stage {name!r} at version {version} now writes rows with digest {digest!r}. If the "
        f"change is intended, bump {stage.__name__}.version (finished shards of the old version "
        f"are then recomputed) and record ({version + 1}, {digest!r}) in tests/golden.py; if not, "
        f"the change altered rows it should not have"
    )
