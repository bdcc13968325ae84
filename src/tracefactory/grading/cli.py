"""`tracefactory grade`: grade one response or a JSONL file of pairs, one JSON verdict per line.

The lead's cli.py wires `grade_cli` as a typer subcommand; the logic lives here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from tracefactory.errors import ConfigError, StageInputError
from tracefactory.grading.extract import ThinkingFormat
from tracefactory.grading.grader import Grader, GraderConfig


def _read_pairs(pairs_path: Path) -> tuple[list[tuple[str, str]], list[bool]]:
    """(response, gold) pairs and truncated flags from a JSONL file with gold/response fields."""
    if not pairs_path.is_file():
        raise StageInputError(f"--pairs file {pairs_path} does not exist")
    pairs, truncated = [], []
    for number, line in enumerate(pairs_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pairs.append((str(row["response"]), str(row["gold"])))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ConfigError(
                f"{pairs_path}:{number}: expected a JSON object with 'gold' and 'response' "
                f"fields ({error})"
            ) from error
        truncated.append(bool(row.get("truncated", False)) or row.get("finish_reason") == "length")
    return pairs, truncated


def grade_cli(
    gold: str | None,
    response: str | None,
    pairs_path: Path | None,
    thinking: ThinkingFormat = ThinkingFormat.R1_OPEN,
    truncated: bool = False,
    workers: int = 2,
    timeout_s: float = 5.0,
    output: TextIO | None = None,
) -> int:
    """Grade `response` against `gold`, or every line of `pairs_path`; print JSON verdicts.

    Each output line is ``{"label": int, "reason": str, "answer": str | null}``. A pairs line may
    also carry ``truncated: true`` or ``finish_reason: "length"``.

    Args:
        gold: gold answer (with `response`), or None when `pairs_path` is given.
        response: the generated text.
        pairs_path: JSONL file with ``gold`` and ``response`` fields.
        thinking: where the thinking section is (see `ThinkingFormat`).
        truncated: the single `response` stopped at the length cap.
        workers: grader worker processes.
        timeout_s: hard limit per comparison, seconds.
        output: where to print (stdout when None).

    Returns:
        The number of verdicts printed.

    Raises:
        ConfigError: neither or both of (gold + response) and pairs_path were given, or a pairs
            line is malformed.
        StageInputError: `pairs_path` does not exist.
    """
    single = gold is not None or response is not None
    if single == (pairs_path is not None) or (single and (gold is None or response is None)):
        raise ConfigError("give either --gold and --response, or --pairs FILE.jsonl (not both)")
    if pairs_path is not None:
        pairs, flags = _read_pairs(pairs_path)
    else:
        pairs, flags = [(str(response), str(gold))], [truncated]
    config = GraderConfig(workers=max(1, min(workers, len(pairs))), timeout_s=timeout_s)
    with Grader(config, thinking=thinking) as grader:
        verdicts = grader.grade_many(pairs, truncated=flags)
    for verdict in verdicts:
        print(json.dumps(verdict.to_dict(), ensure_ascii=False), file=output)
    return len(verdicts)
