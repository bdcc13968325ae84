"""The ``verify`` stage: grade every roll-in and roll-out into the verdicts table.

One verdicts shard per input shard, so the stage resumes shard by shard and spreads over Ray actors
(each owning a ``Grader`` with its own worker processes: math-verify's signal-based timeouts need a
process's main thread, which a Ray actor's method call does not guarantee).

The text graded is what the policy wrote after the prompt: a roll-in's generated tokens, or for a
roll-out, the roll-in prefix it continued plus its own tokens (the prefix may already hold part of
the thinking, or all of it). Token ids are decoded with the tokenizer named in the table metadata.
Workers read input shards by path: on a multi-node cluster, ``data/`` must be on shared storage.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tracefactory.config import VerifyConfig, params_hash
from tracefactory.errors import StageInputError
from tracefactory.grading.grader import Grader
from tracefactory.grading.verdict import GRADER_VERSION, Reason
from tracefactory.io import TableReader
from tracefactory.stage import Shard, ShardResult, Stage


class VerifyStage(Stage):
    """Grades the roll-ins and roll-outs tables, one verdicts shard per input shard."""

    name = "verify"
    output_schema = "verdicts"
    rate_counts = ("traces",)

    def __init__(self, config: VerifyConfig) -> None:
        self.config = config
        self.inputs = {
            "rollins": TableReader(config.rollins_dir),
            "rollouts": TableReader(config.rollouts_dir),
        }
        tokenizers = {t: r.metadata["tokenizer_hash"] for t, r in self.inputs.items()}
        if len(set(tokenizers.values())) != 1:
            raise StageInputError(f"roll-ins and roll-outs use different tokenizers: {tokenizers}")
        self.tokenizer_name = self.inputs["rollouts"].metadata["tokenizer"]
        self._grader: Grader | None = None

    def plan(self) -> list[Shard]:
        return [
            Shard(f"{table}-{path.stem}", payload=(table, str(path)))
            for table, reader in self.inputs.items()
            for path in reader.paths
        ]

    def metadata(self) -> dict[str, str]:
        return {
            "producer": self.name,
            "params_hash": params_hash(
                self.config.grader,
                GRADER_VERSION,
                TableReader(self.config.problems_dir).fingerprint,
                *(reader.fingerprint for reader in self.inputs.values()),
            ),
        }

    def setup(self) -> None:
        from tracefactory.generation.policies import load_tokenizer

        self._tokenizer = load_tokenizer(self.tokenizer_name)
        self._gold = dict(
            TableReader(self.config.problems_dir)
            .scan()
            .select("problem_id", "answer")
            .collect()
            .iter_rows()
        )
        self._grader = Grader(self.config.grader)

    def process(self, shard: Shard) -> ShardResult:
        table, path = shard.payload
        traces = self._responses(table, Path(path))
        missing = set(traces["problem_id"].unique()) - self._gold.keys()
        if missing:
            example = sorted(missing)[:3]
            raise StageInputError(f"{path}: problem ids not in the problems table: {example}")
        ids = traces["response_ids"].to_list()
        # An empty shard happens (roll-ins with nothing to cut); transformers < 5.20 decodes an
        # empty batch to one empty text.
        texts = self._tokenizer.batch_decode(ids, skip_special_tokens=True) if ids else []
        golds = [self._gold[p] for p in traces["problem_id"]]
        verdicts = self._grader.grade_many(
            list(zip(texts, golds, strict=True)), truncated=traces["truncated"].to_list()
        )
        rows = traces.select("trace_id", "problem_id").with_columns(
            pl.lit(table).alias("trace_table"),
            pl.Series("label", [int(v.label) for v in verdicts], dtype=pl.Int8),
            pl.Series("reason", [str(v.reason) for v in verdicts], dtype=pl.String),
            pl.Series("answer", [v.answer for v in verdicts], dtype=pl.String),
            pl.lit(self._grader.version).alias("grader_version"),
        )
        counts = {"traces": rows.height}
        for reason, n in rows["reason"].value_counts().iter_rows():
            counts[f"reason_{Reason(reason)}"] = n
        return ShardResult(rows.to_arrow(), counts)

    def _responses(self, table: str, path: Path) -> pl.DataFrame:
        """Trace id, problem id, the generated response's token ids, and whether it hit the cap."""
        shard = pl.read_parquet(path)
        # Anything but a stop is unfinished: the length cap, or a prompt too long to generate from.
        truncated = (pl.col("finish_reason") != "stop").alias("truncated")
        if table == "rollins":
            return shard.select(
                pl.col("rollin_id").alias("trace_id"),
                "problem_id",
                pl.col("token_ids").alias("response_ids"),
                truncated,
            )
        prefixes = (
            self.inputs["rollins"]
            .scan()
            .filter(pl.col("rollin_id").is_in(shard["rollin_id"].unique().implode()))
            .select("rollin_id", pl.col("token_ids").alias("rollin_ids"))
        )
        joined = shard.lazy().join(prefixes, on="rollin_id", how="left").collect()
        orphans = joined.filter(pl.col("rollin_ids").is_null())["rollin_id"]
        if orphans.len():
            raise StageInputError(f"{path}: roll-outs of unknown roll-ins, e.g. {orphans[0]!r}")
        return (
            joined.lazy()
            .select(
                pl.col("rollout_id").alias("trace_id"),
                "problem_id",
                pl.concat_list(
                    pl.col("rollin_ids").list.head(pl.col("cut_position")), pl.col("token_ids")
                ).alias("response_ids"),
                truncated,
            )
            .collect()
        )
