"""`tracefactory grade`: grade one response or a JSONL file of pairs, one JSON verdict per line.

The lead's cli.py wires `grade_cli` as a typer subcommand; the logic lives here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from tracefactory.errors import ConfigError, StageInputError
from tracefactory.grading.extract import ThinkingFormat
from tracefactory.grading.grader import Grader, GraderConfig
from tracefactory.schemas import FinishReason


def _read_pairs(pairs_path: Path) -> tuple[list[tuple[str, str]], list[bool]]:
    """(response, gold) pairs and truncated flags from a JSONL file with gold/response fields.

    Every problem with the file is a ConfigError naming the file, the line and the fix, so the
    command ends with one line rather than a traceback.
    """
    if not pairs_path.is_file():
        raise StageInputError(f"--pairs file {pairs_path} does not exist")
    pairs, truncated = [], []
    for number, raw in enumerate(pairs_path.read_bytes().splitlines(), start=1):
        where = f"{pairs_path}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"{where}: not UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1}); "
                "re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8"
            ) from error
        if not line.strip():
            continue
        row = _parse_row(line, where)
        pairs.append((row["response"], _gold_text(row["gold"], where)))
        truncated.append(
            bool(row.get("truncated", False)) or row.get("finish_reason") == FinishReason.LENGTH
        )
    return pairs, truncated


def _parse_row(line: str, where: str) -> dict:
    """One JSON object with a string ``response`` and a ``gold``; ConfigError otherwise."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{where}: not a JSON object ({error})") from error
    if not isinstance(row, dict) or "gold" not in row or "response" not in row:
        raise ConfigError(f"{where}: expected a JSON object with 'gold' and 'response' fields")
    if not isinstance(row["response"], str):
        raise ConfigError(
            f"{where}: 'response' is {json.dumps(row['response'])[:40]}, not a string; a missing "
            'response has no verdict: drop the line, or give "" to grade it as empty'
        )
    return row


def _gold_text(gold: object, where: str) -> str:
    """The gold answer as text: strings as they are, JSON numbers written out (``16`` -> "16")."""
    if isinstance(gold, str):
        return gold
    if isinstance(gold, int | float) and not isinstance(gold, bool):
        return str(gold)
    raise ConfigError(f"{where}: 'gold' is {json.dumps(gold)[:40]}; expected a string or number")


def _grader_config(workers: int, timeout_s: float) -> GraderConfig:
    """GraderConfig from the command's options; ConfigError naming the option when one is bad."""
    try:
        return GraderConfig(workers=workers, timeout_s=timeout_s)
    except ValidationError as error:
        problem = error.errors()[0]
        option = "--" + str(problem["loc"][0]).replace("_", "-")
        raise ConfigError(
            f"{option} {problem['input']!r}: {problem['msg'].lower()} "
            f"(e.g. {option} {GraderConfig.model_fields[str(problem['loc'][0])].default})"
        ) from error


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
        ConfigError: neither or both of (gold + response) and pairs_path were given; a pairs line
            is not UTF-8, not a JSON object, or has a null response; or `workers`/`timeout_s`
            is out of range.
        StageInputError: `pairs_path` does not exist.
    """
    single = gold is not None or response is not None
    if single == (pairs_path is not None) or (single and (gold is None or response is None)):
        raise ConfigError("give either --gold and --response, or --pairs FILE.jsonl (not both)")
    config = _grader_config(workers, timeout_s)
    if pairs_path is not None:
        pairs, flags = _read_pairs(pairs_path)
    else:
        pairs, flags = [(str(response), str(gold))], [truncated]
    config = config.model_copy(update={"workers": max(1, min(workers, len(pairs)))})
    with Grader(config, thinking=thinking) as grader:
        verdicts = grader.grade_many(pairs, truncated=flags)
    for verdict in verdicts:
        print(json.dumps(verdict.to_dict(), ensure_ascii=False), file=output)
    return len(verdicts)
