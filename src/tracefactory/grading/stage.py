"""The ``verify`` stage: grade every roll-in and roll-out into the verdicts table.

One verdicts shard per input shard, so the stage resumes shard by shard and spreads over Ray actors
(each owning a ``Grader`` with its own worker processes: math-verify's signal-based timeouts need a
process's main thread, which a Ray actor's method call does not guarantee).

The text graded is what the policy wrote after the prompt: a roll-in's generated tokens, or for a
roll-out, the roll-in prefix it continued plus its own tokens (the prefix may already hold part of
the thinking, or all of it). Token ids are decoded with the tokenizer named in the table metadata.
The driver reads each shard's traces, with their prefixes and gold answers, and sends them to the
worker: nodes need no shared filesystem.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING

import polars as pl

from tracefactory.config import WorkerConfig
from tracefactory.errors import StageInputError
from tracefactory.grading.canary import grader_identity
from tracefactory.grading.config import VerifyConfig
from tracefactory.grading.grader import Grader
from tracefactory.grading.verdict import Reason
from tracefactory.io import TableReader
from tracefactory.models import require_same_tokenizer
from tracefactory.schemas import FinishReason
from tracefactory.stage import Shard, ShardResult, Stage
from tracefactory.summaries import SummaryKey, percent

if TYPE_CHECKING:
    from tracefactory.params import Params

logger = logging.getLogger(__name__)


class VerifyCount(StrEnum):
    """Counters of the verify stage."""

    TRACES = "traces"  # traces graded
    REASON = "reason_"  # ``reason_<Reason>``: traces per verdict reason


def reason_counter(reason: Reason) -> str:
    """The counter of the traces graded with ``reason``."""
    return f"{VerifyCount.REASON}{reason}"


class VerifyStage(Stage):
    """Grades the roll-ins and roll-outs tables, one verdicts shard per input shard."""

    name = "verify"
    output_schema = "verdicts"
    version = 3  # 3: grader 4 (scaled relations, expanded expressions); 2: grader 3 (equation
    # rule, peer classes); grader_version names the identity
    counters = VerifyCount
    rate_counts = (VerifyCount.TRACES,)

    def __init__(self, config: VerifyConfig) -> None:
        self.config = config
        self.problems = TableReader(config.problems_dir)
        self.inputs = {
            "rollins": TableReader(config.rollins_dir),
            "rollouts": TableReader(config.rollouts_dir),
        }
        rollouts = self.inputs["rollouts"].metadata
        self.tokenizer_name = rollouts["tokenizer"]
        require_same_tokenizer(
            f"the rollins table {config.rollins_dir}",
            self.inputs["rollins"].metadata["tokenizer_hash"],
            f"the rollouts table {config.rollouts_dir} ({self.tokenizer_name})",
            rollouts["tokenizer_hash"],
        )
        self.inputs["rollouts"].tokenizer()  # refused at the start if it changed since
        self._grader: Grader | None = None

    @classmethod
    def from_params(cls, params: Params) -> VerifyStage:
        return cls(params.verify)

    def pools(self) -> dict[str, WorkerConfig]:
        return {"": self.config.workers}

    def plan(self) -> list[Shard]:
        return [
            Shard(f"{table}-{name}", payload=(table, name))
            for table, reader in self.inputs.items()
            for name in reader.shard_names
        ]

    def identity(self) -> list:
        """The grader's settings and identity (its rules version, math-verify and sympy versions
        and its canary verdicts: computing it grades the canaries, so a drifted grader stops here,
        before any shard is written), and the problems, rollins and rollouts tables."""
        return [
            self.config.grader,
            grader_identity(self.config.grader),
            self.problems.fingerprint,
            *(reader.fingerprint for reader in self.inputs.values()),
        ]

    def read(self, shard: Shard) -> pl.DataFrame:
        """Trace id, problem id, the generated response's token ids, whether it hit the cap, and
        the gold answer, for every trace of the shard."""
        table, name = shard.payload
        traces = self._responses(table, name)
        gold = self.problems.lookup(
            "problem_id", traces["problem_id"].unique().to_list(), ["problem_id", "answer"]
        )
        joined = traces.join(gold, on="problem_id", how="left", maintain_order="left")
        missing = joined.filter(pl.col("answer").is_null())["problem_id"].unique().sort()
        if missing.len():
            raise StageInputError(
                f"{table} shard {name!r}: problem ids not in the problems table: "
                f"{missing.head(3).to_list()}"
            )
        return joined

    def setup(self, pool: str) -> None:
        self._tokenizer = self.inputs["rollouts"].tokenizer()  # the one the ids were made with
        self._grader = Grader(self.config.grader)

    def process(self, shard: Shard, inputs: pl.DataFrame) -> ShardResult:
        table, _ = shard.payload
        ids = inputs["response_ids"].to_list()
        # An empty shard happens (roll-ins with nothing to cut); transformers < 5.20 decodes an
        # empty batch to one empty text.
        texts = self._tokenizer.batch_decode(ids, skip_special_tokens=True) if ids else []
        golds = inputs["answer"].to_list()
        verdicts = self._grader.grade_many(
            list(zip(texts, golds, strict=True)), truncated=inputs["truncated"].to_list()
        )
        rows = inputs.select("trace_id", "problem_id").with_columns(
            pl.lit(table).alias("trace_table"),
            pl.Series("label", [v.to_dict()["label"] for v in verdicts], dtype=pl.Int8),
            pl.Series("reason", [str(v.reason) for v in verdicts], dtype=pl.String),
            pl.Series("answer", [v.answer for v in verdicts], dtype=pl.String),
            pl.lit(self._grader.version).alias("grader_version"),
        )
        counts = {VerifyCount.TRACES: rows.height}
        for reason, n in rows["reason"].value_counts().iter_rows():
            counts[reason_counter(Reason(reason))] = n
        if counts.get(reason_counter(Reason.ERROR)):
            logger.warning(
                "%s: the grader failed on %d traces (reason error, no label: the label stage "
                "leaves them out); the workers' log says why",
                shard.name,
                counts[reason_counter(Reason.ERROR)],
            )
        return ShardResult(rows.to_arrow(), counts)

    @staticmethod
    def summary(report: dict) -> dict:
        """Verdicts written and the share graded a match."""
        stats = report["stats"]
        traces = stats.get(VerifyCount.TRACES, 0)
        matches = stats.get(reason_counter(Reason.MATCH), 0)
        return {
            SummaryKey.ROWS: report["rows"],
            SummaryKey.MATCH_RATE: percent(matches / traces if traces else None),
        }

    def _responses(self, table: str, name: str) -> pl.DataFrame:
        shard = self.inputs[table].scan_shard(name).collect()
        # Anything but a stop is unfinished: the length cap, or a prompt too long to generate from.
        truncated = (pl.col("finish_reason") != FinishReason.STOP.value).alias("truncated")
        if table == "rollins":
            return shard.select(
                pl.col("rollin_id").alias("trace_id"),
                "problem_id",
                pl.col("token_ids").alias("response_ids"),
                truncated,
            )
        prefixes = self._prefixes(shard["rollin_id"].unique().to_list())
        prefixes = prefixes.rename({"token_ids": "rollin_ids"})
        joined = shard.join(prefixes, on="rollin_id", how="left", maintain_order="left")
        orphans = joined.filter(pl.col("rollin_ids").is_null())["rollin_id"]
        if orphans.len():
            raise StageInputError(
                f"rollouts shard {name!r}: roll-outs of unknown roll-ins, e.g. {orphans[0]!r}"
            )
        return joined.select(
            pl.col("rollout_id").alias("trace_id"),
            "problem_id",
            pl.concat_list(
                pl.col("rollin_ids").list.head(pl.col("cut_position")), pl.col("token_ids")
            ).alias("response_ids"),
            truncated,
        )

    def _prefixes(self, rollin_ids: list[str]) -> pl.DataFrame:
        """``rollin_id`` and ``token_ids`` of ``rollin_ids``, read from the rollins shards that
        hold them only. Roll-in ids are hashes, so no Parquet statistics narrow a scan of the
        whole table, and one scan per rollouts shard made the stage quadratic in the run's size
        (at 2% of the paper: 5 s for each of 61 shards)."""
        rollins = self.inputs["rollins"]
        names = (
            self._rollin_shards.filter(pl.col("rollin_id").is_in(rollin_ids))["shard"]
            .unique(maintain_order=True)
            .to_list()
        )
        frames = [rollins.scan_shard(name) for name in names] or [rollins.scan().head(0)]
        return (
            pl.concat(frames)
            .filter(pl.col("rollin_id").is_in(rollin_ids))
            .select("rollin_id", "token_ids")
            .collect()
        )

    @cached_property
    def _rollin_shards(self) -> pl.DataFrame:
        """Which rollins shard holds each roll-in (``rollin_id``, ``shard``): the ids column
        alone, read once (~20 bytes a roll-in)."""
        rollins = self.inputs["rollins"]
        return pl.concat(
            [
                rollins.scan_shard(name).select("rollin_id", shard=pl.lit(name)).collect()
                for name in rollins.shard_names
            ]
            or [pl.DataFrame(schema={"rollin_id": pl.String, "shard": pl.String})]
        )
