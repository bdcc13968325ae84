"""Logging, counters, progress lines, and the small metrics files each stage leaves for ``dvc``."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from pathlib import Path

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def setup_logging(level: str | None = None) -> None:
    """One timestamped format for every line: ours, the libraries', and Python warnings.

    Warnings go through logging (``py.warnings``) so that they carry a timestamp like every other
    line and a log can be searched for them; each distinct warning is still shown once.
    """
    logging.basicConfig(
        level=level or os.environ.get("TRACEFACTORY_LOG_LEVEL", "INFO"),
        format=LOG_FORMAT,
        datefmt=LOG_DATE_FORMAT,
        force=True,
    )
    logging.captureWarnings(True)
    # Offline by default: the Hub is reached only by commands that are asked to (publish, a Hub id).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # datasets draws its own bars ("Generating train split"); read when it is imported.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Stats:
    """Named counters of what a stage did and dropped (``dropped_<reason>``), as datatrove's."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def update(self, name: str, value: int = 1) -> None:
        self.counts[str(name)] += value  # a StrEnum member counts under its name, never its repr

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


class Progress:
    """Progress of a long stage: one log line per interval, and one when it finishes.

    Shows done/total units, the rate of each counted quantity (samples/s, tokens/s) and the ETA.
    Always a log line, never a carriage-return live line: a log that DVC, a terminal or a file
    receives then reads the same, with one timestamped format.
    """

    def __init__(self, stage: str, total: int, unit: str = "shards", interval_s: float = 10.0):
        self.stage, self.total, self.unit, self.interval_s = stage, total, unit, interval_s
        self.done = 0
        self.counts: Counter[str] = Counter()
        self.started = self._last_log = time.monotonic()

    def advance(self, units: int = 1, **counts: int) -> None:
        self.done += units
        self.counts.update({str(name): n for name, n in counts.items()})
        now = time.monotonic()
        # The last unit is reported once, by close().
        if now - self._last_log >= self.interval_s and self.done < self.total:
            self._last_log = now
            logger.info(self.line())

    def close(self) -> None:
        logger.info(self.line(finished=True))

    def line(self, finished: bool = False) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        remaining = self.total - self.done
        eta = elapsed / self.done * remaining if self.done else float("nan")
        parts = [f"[{self.stage}] {self.done}/{self.total} {self.unit}"]
        if self.counts:
            parts.append(" ".join(f"{_rate(n / elapsed)} {k}/s" for k, n in self.counts.items()))
        parts.append(f"elapsed {_clock(elapsed)}")
        parts.append("finished" if finished else f"eta {_clock(eta)}")
        return " | ".join(parts)


def _rate(per_second: float) -> str:
    return f"{per_second:,.0f}" if per_second >= 10 else f"{per_second:.2g}"


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: nothing done yet
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def write_metrics(path: str | Path, metrics: dict) -> Path:
    """Write a stage's metrics JSON atomically (``reports/<stage>/metrics.json``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
