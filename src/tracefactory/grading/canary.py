"""No silent drift: the grader's identity, checked on a built-in canary set before grading.

A stage skips the shards it finished under the same params hash, so a change of verdicts that the
hash does not see keeps the old verdicts: a fix to the rules, or a math-verify or sympy upgrade
that reads an answer differently. The verify stage therefore puts the grader's identity in its
params hash: its rules (`GRADER_VERSION`, the mode and the comparison settings, in
`Grader.version`), the math-verify and sympy versions, and a digest of its verdicts on
`CANARIES`, pairs known to be tricky. A grader change re-grades; an unchanged grader never does.

The canaries also carry the verdicts recorded for each mode. `grader_identity` grades them first
and raises `GraderDriftError` when one differs, so an upgrade that changes verdicts is caught
before any shard is written. With comparison settings other than the defaults the recorded
verdicts do not apply; the digest still enters the hash. After a deliberate change, record the
new verdicts here and bump `GRADER_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version as package_version

from tracefactory.errors import TracefactoryError
from tracefactory.grading.compare import GraderMode
from tracefactory.grading.grader import Grader, GraderConfig
from tracefactory.grading.verdict import Reason, Verdict


class GraderDriftError(TracefactoryError):
    """The grader's verdict on a canary differs from the recorded one."""


@dataclass(frozen=True)
class Canary:
    """A (response, gold) pair and the reason each mode recorded for it (graded without a
    thinking section)."""

    response: str
    gold: str
    tracefactory: Reason
    official: Reason


_M, _X, _N = Reason.MATCH, Reason.MISMATCH, Reason.NO_BOXED
CANARIES: tuple[Canary, ...] = (
    Canary(r"\boxed{016}", "16", _M, _M),
    Canary(r"\boxed{1}", "x + y = 1", _X, _M),  # a general equation is not its right side
    Canary(r"\boxed{0}", "a + 3z = 0", _X, _M),
    Canary(r"\boxed{x = 3}", "3", _M, _M),
    Canary(r"\boxed{1 = x + y}", "x + y = 1", _M, _M),
    Canary(r"\boxed{(1+i)(x+y) = 0}", "y = -x", _M, _X),  # an equation times a constant
    Canary(r"\boxed{\frac{1}{2006!}}", r"\frac{1}{2004!}", _X, _M),  # both round to 0
    Canary(r"\boxed{0.3333}", r"\frac{1}{3}", _M, _X),
    Canary(r"\boxed{0.33}", r"\frac{1}{3}", _X, _X),
    Canary(r"\boxed{1, 2, \ldots, n}", r"1, 3, 5, \ldots, 2n-1", _X, _M),
    Canary(r"\boxed{1} and \boxed{2}", "1, 2", _M, _X),  # several boxes, one answer
    Canary(r"\boxed{1 \boxed{3}}", "3", Reason.NESTED_BOXED, _M),  # a hedge
    Canary(r"\boxed{10 weeks}", "10", _M, _X),
    Canary(r"\boxed{1\,000}", "1000", _M, _X),
    Canary(r"\boxed{1 1/2}", "1.5", _M, _X),
    Canary(r"\boxed{8:34 PM}", "20:34", _M, _X),
    Canary(r"\boxed{(1+i)^2}", "2i", _M, _X),
    Canary(r"\boxed{\sin(90^\circ - x)}", r"\cos x", _M, _X),
    Canary(r"\boxed{38\%}", "0.38", _X, _X),
    Canary(r"\boxed{3 \pm 1}", "2, 4", _M, _M),
    Canary(r"\boxed{(1,2)}", "(1,2]", _X, _X),
    Canary(r"\boxed{2 < 2x}", "x > 1", _M, _X),  # the same solutions
    Canary(r"\boxed{\{1, 3\}}", "(3, 1)", _X, _M),  # a set is not a tuple
    Canary(r"\boxed{10%}", "0.1", _X, _M),  # a percent is its number
    Canary(r"\[\boxed{\text{Yes}}\] \[\boxed{4}\]", "4", _M, _M),  # the last part's gold
    Canary(r"\boxed{AB = 4}", "4", _M, _M),  # a named quantity
    Canary(r"\boxed{3", "3", _N, _N),  # never closed
    Canary("the answer is 3", "3", _N, _N),
)


def canary_digest(verdicts: Sequence[Verdict]) -> str:
    """Short hash of the canary verdicts (reason and extracted answer of each)."""
    payload = json.dumps([[str(v.reason), v.answer] for v in verdicts], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def check_canaries(verdicts: Sequence[Verdict], mode: GraderMode) -> None:
    """Raise `GraderDriftError` naming the first canary whose reason is not the recorded one."""
    for canary, verdict in zip(CANARIES, verdicts, strict=True):
        recorded = canary.official if mode is GraderMode.OFFICIAL else canary.tracefactory
        if verdict.reason is not recorded:
            raise GraderDriftError(
                f"grader drift: canary {canary.response!r} vs gold {canary.gold!r} is now "
                f"{verdict.reason}, recorded {recorded} (math-verify "
                f"{package_version('math-verify')}, sympy {package_version('sympy')}); pin the "
                "versions the canaries were recorded with, or record the new verdicts in "
                "tracefactory/grading/canary.py and bump GRADER_VERSION"
            )


def grader_identity(config: GraderConfig) -> dict[str, str]:
    """What the verdicts of a grader with `config` depend on, after checking the canaries.

    Grades `CANARIES` in a one-worker `Grader` (a second or two). The recorded verdicts are
    checked in official mode and with the default comparison settings.

    Returns:
        ``{"rules", "math_verify", "sympy", "canary_digest"}``, for a params hash.

    Raises:
        GraderDriftError: a canary's verdict differs from the recorded one.
    """
    with Grader(config, workers=1, cache_size=0) as grader:
        verdicts = grader.grade_many([(c.response, c.gold) for c in CANARIES], thinking="none")
        rules = grader.version
    defaults = GraderConfig()
    recorded_settings = (config.float_rounding, config.numeric_precision) == (
        defaults.float_rounding,
        defaults.numeric_precision,
    )
    if config.mode is GraderMode.OFFICIAL or recorded_settings:
        check_canaries(verdicts, config.mode)
    return {
        "rules": rules,
        "math_verify": package_version("math-verify"),
        "sympy": package_version("sympy"),
        "canary_digest": canary_digest(verdicts),
    }
