"""The grader's output: a `Verdict` (label, reason, extracted answer) and the grader's version.

The three labels are the paper's classes (arXiv 2505.17373, section 3): 1 finished and correct,
0 finished and wrong, 2 incomplete. The reason says *why*, so a "wrong" caused by an unparseable
or timed-out answer is never confused with a real mismatch (math-verify returns a bare ``False``
for all three). Reason values are the ones allowed by ``schemas/verdicts.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tracefactory.schemas import TrajectoryClass

# Bump when extraction or comparison rules change: cached and stored verdicts name the version
# that produced them (the full version string also carries math-verify's version and precision).
GRADER_VERSION = "1"


class Reason(StrEnum):
    """Why a verdict has its label (values fixed by schemas/verdicts.yaml)."""

    MATCH = "match"
    MISMATCH = "mismatch"
    NO_THINK_END = "no_think_end"
    NO_BOXED = "no_boxed"
    TRUNCATED = "truncated"
    UNPARSEABLE = "unparseable"
    TIMEOUT = "timeout"


# unparseable -> 0: the response finished and committed to an answer that no reader can use.
# timeout -> 0: a comparison that takes seconds comes from a huge or degenerate expression (gold
# answers are short), so the answer is almost surely wrong; labelling it 2 would tell the value
# model the policy had not finished, and 1 would reward an unverified answer. The reason column
# keeps these rows separable for anyone who prefers to drop them.
LABEL_OF_REASON: dict[Reason, TrajectoryClass] = {
    Reason.MATCH: TrajectoryClass.CORRECT,
    Reason.MISMATCH: TrajectoryClass.WRONG,
    Reason.NO_BOXED: TrajectoryClass.WRONG,
    Reason.UNPARSEABLE: TrajectoryClass.WRONG,
    Reason.TIMEOUT: TrajectoryClass.WRONG,
    Reason.NO_THINK_END: TrajectoryClass.INCOMPLETE,
    Reason.TRUNCATED: TrajectoryClass.INCOMPLETE,
}


@dataclass(frozen=True)
class Verdict:
    """One graded response.

    Attributes:
        label: 1 correct, 0 finished but wrong, 2 incomplete.
        reason: why (see `Reason`).
        answer: the extracted final answer (content of the last boxed), or None if none was read.
    """

    label: TrajectoryClass
    reason: Reason
    answer: str | None

    @classmethod
    def of(cls, reason: Reason, answer: str | None) -> Verdict:
        """Build the verdict for `reason`, with the label that reason always implies."""
        return cls(LABEL_OF_REASON[reason], reason, answer)

    def to_dict(self) -> dict[str, int | str | None]:
        """Plain JSON-ready form: ``{"label": int, "reason": str, "answer": str | None}``."""
        return {"label": int(self.label), "reason": str(self.reason), "answer": self.answer}
