"""Grading: extract the final answer of a response and compare it with the gold answer.

``grade(response, gold)`` for one call; ``Grader`` (a pool of bounded worker processes with a
verdict cache) for stages. See DESIGN.md "Verification" and issue 3.
"""

from tracefactory.grading.extract import Extraction, ThinkingFormat, extract
from tracefactory.grading.grader import Grader, GraderConfig, grade
from tracefactory.grading.verdict import GRADER_VERSION, Label, Reason, Verdict

__all__ = [
    "GRADER_VERSION",
    "Extraction",
    "Grader",
    "GraderConfig",
    "Label",
    "Reason",
    "ThinkingFormat",
    "Verdict",
    "extract",
    "grade",
]
