"""Grading: extract the final answer of a response and compare it with the gold answer.

``grade(response, gold)`` for one call; ``Grader`` (a pool of bounded worker processes with a
verdict cache) for stages. The design is in the README's "Grading" section.
"""

from tracefactory.grading.extract import Extraction, ThinkingFormat, extract
from tracefactory.grading.grader import Grader, GraderConfig, grade
from tracefactory.grading.verdict import GRADER_VERSION, Reason, Verdict

__all__ = [
    "GRADER_VERSION",
    "Extraction",
    "Grader",
    "GraderConfig",
    "Reason",
    "ThinkingFormat",
    "Verdict",
    "extract",
    "grade",
]
