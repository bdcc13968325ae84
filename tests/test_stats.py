"""Logging and progress lines: one timestamped format, counters by name, each line once."""

import logging
import os
import re
import subprocess
import sys
from enum import StrEnum

from tracefactory.stats import Progress, Stats

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|WARNING) \S+: ")


class Counted(StrEnum):
    TOKENS = "tokens"
    DROPPED_EMPTY = "dropped_empty"


def test_progress_logs_rates_by_name_eta_and_the_last_line_once(caplog):
    caplog.set_level(logging.INFO, logger="tracefactory.stats")
    progress = Progress("demo", 2, unit="shards", interval_s=0.0)
    progress.advance(1, **{Counted.TOKENS: 10})
    progress.advance(1, **{Counted.TOKENS: 10})
    progress.close()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("[demo] 1/2 shards | ") and " tokens/s | " in lines[0]
    assert "eta " in lines[0]
    assert lines[1].startswith("[demo] 2/2 shards | ") and lines[1].endswith(" | finished")
    assert "Counted" not in "".join(lines)


def test_stats_count_enum_members_under_their_names():
    stats = Stats()
    stats.update(Counted.DROPPED_EMPTY)
    stats.update("dropped_empty", 2)
    assert stats.as_dict() == {"dropped_empty": 3}
    assert all(type(key) is str for key in stats.as_dict())
    assert repr(stats.as_dict()) == "{'dropped_empty': 3}"


def test_every_line_warnings_included_has_the_one_timestamped_format():
    script = (
        "import logging, warnings\n"
        "from tracefactory.stats import setup_logging\n"
        "setup_logging()\n"
        "logging.getLogger('tracefactory.demo').info('a line')\n"
        "warnings.warn('an old call', DeprecationWarning, stacklevel=1)\n"
        "warnings.simplefilter('always')\n"
        "warnings.warn('another', FutureWarning, stacklevel=1)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    starts = [line for line in lines if LOG_LINE.match(line)]
    assert len(starts) == 3, result.stderr
    assert "py.warnings" in starts[1] and "DeprecationWarning: an old call" in starts[1]


def test_reading_a_local_file_with_datasets_draws_no_progress_bar(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"problem": "1+1", "answer": "2"}\n')
    script = (
        "from tracefactory.stats import setup_logging\n"
        "setup_logging()\n"
        "from tracefactory.datafiles import read_dataset\n"
        "print(read_dataset('rows.jsonl', None, 'train', ['problem']).num_rows)\n"
    )
    env = {k: v for k, v in os.environ.items() if "PROGRESS_BARS" not in k}
    env |= {"HF_DATASETS_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == "1"
    assert "Generating train split" not in result.stderr and "it/s" not in result.stderr
