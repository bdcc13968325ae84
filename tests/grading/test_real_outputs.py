"""Agreement with the source judgements of the shared real_outputs.jsonl (never copied
into the repo). Every disagreement must be listed, with its reason, in
real_outputs_disagreements.py.
"""

import json
import logging

from locations import BENCHMARKS, needs_shared_file
from real_outputs_disagreements import DISAGREEMENTS, KNOWN_FALSE_NEGATIVES

from tracefactory.grading import Grader
from tracefactory.schemas import TrajectoryClass

REAL_OUTPUTS = BENCHMARKS / "real_outputs.jsonl"
logger = logging.getLogger(__name__)


@needs_shared_file(REAL_OUTPUTS)
def test_every_disagreement_with_source_judgements_is_explained():
    rows = [json.loads(line) for line in REAL_OUTPUTS.read_text(encoding="utf-8").splitlines()]
    judged = [row for row in rows if row["judged_correct"] is not None]
    # auto: rows mix <think> (DeepScaleR, R1-14B with its raw chat template), Sky-T1 and plain text
    with Grader(workers=2, timeout_s=10.0, thinking="auto") as grader:
        verdicts = grader.grade_many([(row["response"], row["gold"]) for row in judged])
    disagreeing = {
        row["id"]
        for row, verdict in zip(judged, verdicts, strict=True)
        if (verdict.label is TrajectoryClass.CORRECT) != row["judged_correct"]
    }
    agreement = 1 - len(disagreeing) / len(judged)
    logger.info("agreement %.3f over %d judged rows", agreement, len(judged))
    assert disagreeing == set(DISAGREEMENTS), "new or vanished disagreements: update the fixture"
    assert not disagreeing & set(KNOWN_FALSE_NEGATIVES)
    assert agreement > 0.92
