"""Export the labels table as a dataset folder that ``datasets.load_dataset`` reads.

Layout (config names as in the card's ``configs:`` front matter)::

    data/dataset/
      README.md                      the card
      PROVENANCE.md                  input table hashes, table metadata, params
      figures/*.png                  the card's figures
      default/train-00000-of-00002.parquet, validation-...   our layout (schemas/labels.yaml)
      openr1_vm/train-..., validation-...                    OpenR1-VM layout, one row per problem
      text/train-..., validation-...                         default's rows decoded, for reading

``load_dataset(folder)``, ``load_dataset(folder, "openr1_vm")`` and ``(folder, "text")`` follow the
card's configs;
``load_dataset("parquet", data_dir=folder + "/default")`` reads one config directly. The folder is
built under ``<folder>.incomplete`` and renamed into place only when whole (as ``datasets`` does).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from tracefactory.codeversion import CodeVersion, code_version
from tracefactory.dataset.card import SPLIT_LABELS, render_card
from tracefactory.dataset.config import DatasetConfig
from tracefactory.dataset.figures import draw_figures
from tracefactory.dataset.provenance import PROVENANCE_FILE, input_hashes, render_provenance
from tracefactory.dataset.stats import collect_stats
from tracefactory.errors import ShardError, StageInputError, TracefactoryError
from tracefactory.integrity import TableLock, record_folder, require_replaceable
from tracefactory.io import SplitFileWriter, TableReader, atomic_folder
from tracefactory.schemas import CLASS_NAMES, load_schema

if TYPE_CHECKING:
    from tracefactory.params import Params

logger = logging.getLogger(__name__)

SPLIT_NAMES = SPLIT_LABELS  # value-model split -> Hub split name


@dataclass
class ExportSummary:
    """What the export wrote: files and rows per (config, Hub split)."""

    folder: Path
    code: CodeVersion
    files: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)


def _hub_split(frame: pl.DataFrame, split: str) -> pa.Table:
    return frame.filter(pl.col("split") == split).to_arrow()


def byte_bounded(table: pa.Table, max_bytes: int) -> Iterator[pa.Table]:
    """Consecutive slices of ``table`` of at most ``max_bytes`` Arrow bytes each (a single row
    larger than that is a slice of its own): each becomes one Parquet row group, so a reader (the
    Hub's viewer, ``datasets``) never holds more than that at once, whatever the row sizes."""
    if table.num_rows <= 1 or table.nbytes <= max_bytes:
        if table.num_rows:
            yield table
        return
    rows = max(1, table.num_rows * max_bytes // table.nbytes)
    for start in range(0, table.num_rows, rows):
        part = table.slice(start, rows)
        if part.nbytes > max_bytes and part.num_rows > 1:  # rows longer than the average
            half = part.num_rows // 2
            yield from byte_bounded(part.slice(0, half), max_bytes)
            yield from byte_bounded(part.slice(half), max_bytes)
        else:
            yield part


def _write_splits(files: SplitFileWriter, frame: pl.DataFrame, max_bytes: int) -> None:
    for split, hub_split in SPLIT_NAMES.items():
        for part in byte_bounded(_hub_split(frame, split), max_bytes):
            files.write(hub_split, part)


def write_default(labels: TableReader, folder: Path, config: DatasetConfig) -> SplitFileWriter:
    """Write the labels table into the ``default`` config, one file sequence per split, one
    labels shard at a time: memory follows the label stage's shard size, not the table's (a
    dataset scan reads several files ahead, which at paper row sizes is gigabytes)."""
    files = SplitFileWriter(
        folder, load_schema("labels"), labels.metadata, config.rows_per_file, config.file_bytes
    )
    for name in labels.shard_names:
        _write_splits(files, labels.scan_shard(name).collect(), config.row_group_bytes)
    return files


def openr1_vm_rows(labels: pl.LazyFrame) -> pl.DataFrame:
    """Group labels rows per problem into the OpenR1-VM layout (schemas/dataset_openr1_vm.yaml).

    ``roll_in_ids`` is the context a roll-out continued (prompt + roll-in prefix), as the
    paper's trainer expects; the three lists are aligned, ordered by ``rollout_id``.
    """
    start = pl.col("supervised_start")
    return (
        labels.sort("problem_id", "rollout_id")
        .group_by("problem_id", "split", maintain_order=True)
        .agg(
            pl.col("input_ids").list.head(start).alias("roll_in_ids"),
            pl.col("input_ids").list.slice(start).alias("roll_outs_ids"),
            pl.col("label").alias("labels"),
        )
        .collect(engine="streaming")
    )


def write_openr1_vm(labels: TableReader, folder: Path, config: DatasetConfig) -> SplitFileWriter:
    """Write the ``openr1_vm`` config shard by shard (the label stage keeps a problem in one shard).

    Raises:
        ShardError: a problem appears in two labels shards (the table was not made by the
            label stage), so grouping shard by shard would split it.
    """
    files = SplitFileWriter(
        folder,
        load_schema("dataset_openr1_vm"),
        labels.metadata,
        config.problems_per_file,
        config.file_bytes,
    )
    seen: set[str] = set()
    for name in labels.shard_names:
        grouped = openr1_vm_rows(labels.scan_shard(name))
        repeated = seen.intersection(grouped["problem_id"].to_list())
        if repeated:
            raise ShardError(
                f"{labels.directory}: shard {name!r} holds problem(s) {sorted(repeated)[:3]} that "
                f"also appear in an earlier labels shard"
            )
        seen.update(grouped["problem_id"].to_list())
        _write_splits(files, grouped, config.row_group_bytes)
    return files


TEXT_SOURCE_COLUMNS = [
    "rollout_id",
    "problem_id",
    "split",
    "input_ids",
    "supervised_start",
    "label",
    "branch_value",
    "branch_count",
]


def write_text(
    labels: TableReader, problems: TableReader, folder: Path, config: DatasetConfig
) -> SplitFileWriter:
    """Write the ``text`` config: each ``default`` row decoded, beside its problem and gold answer,
    so a person and the Hub's viewer can read the data (schemas/dataset_text.yaml).

    One labels shard at a time, as ``write_default``: a dataset scan reads several files ahead,
    and its peak grew with the table (1.4 GB at 0.5% of the paper, 1.9 GB at 1%). Within a shard
    the token ids are decoded ``TEXT_DECODE_TOKENS`` at a time, since decoding goes through
    Python lists of ints (~36 bytes a token: a 2,048-row batch of 16K-token rows is over 1 GB).

    Raises:
        StageInputError: the tokenizer the labels table records is not the one that loads here,
            or a labels row's problem is not in the problems table.
    """
    metadata = labels.metadata
    tokenizer = labels.tokenizer()
    gold = problems.scan().select("problem_id", "problem", gold_answer="answer").collect()
    schema = load_schema("dataset_text")
    files = SplitFileWriter(folder, schema, metadata, config.rows_per_file, config.file_bytes)
    start = pl.col("supervised_start")
    for name in labels.shard_names:
        frame = (
            labels.scan_shard(name)
            .select(TEXT_SOURCE_COLUMNS)
            .collect()
            .join(gold, on="problem_id", how="left", maintain_order="left")
        )
        missing = frame.filter(pl.col("problem").is_null())["problem_id"].unique().to_list()
        if missing:
            raise StageInputError(
                f"{labels.directory}: problem(s) {sorted(missing)[:3]} are not in "
                f"{problems.directory}; rerun the pipeline from the problems stage"
            )
        roll_in, roll_out = [], []
        for part in token_bounded(frame, TEXT_DECODE_TOKENS):
            roll_in += tokenizer.batch_decode(
                part.select(pl.col("input_ids").list.head(start))["input_ids"].to_list()
            )
            roll_out += tokenizer.batch_decode(
                part.select(pl.col("input_ids").list.slice(start))["input_ids"].to_list()
            )
        frame = frame.with_columns(
            roll_in=pl.Series(roll_in, dtype=pl.String),
            roll_out=pl.Series(roll_out, dtype=pl.String),
        )
        _write_splits(files, frame.select(schema.arrow.names), config.row_group_bytes)
    return files


TEXT_DECODE_TOKENS = 2**20  # token ids decoded at once (Python ints: ~36 MB)


def token_bounded(frame: pl.DataFrame, max_tokens: int) -> Iterator[pl.DataFrame]:
    """Consecutive slices of ``frame`` of at most ``max_tokens`` ``input_ids`` each (a longer row
    is a slice of its own)."""
    lengths = frame["input_ids"].list.len().to_list()
    first, tokens = 0, 0
    for row, length in enumerate(lengths):
        if tokens and tokens + length > max_tokens:
            yield frame.slice(first, row - first)
            first, tokens = row, 0
        tokens += length
    if first < len(lengths):
        yield frame.slice(first)


def decoded_example(labels: TableReader, tokenizer: str, chars: int = 600) -> str | None:
    """The first validation row (else the first row) as text, for the card; None when the
    tokenizer cannot be loaded here (the card then shows only how to decode)."""
    # The row's id and shard from the light columns first, then that shard alone: the ids are
    # hashes, so no Parquet statistics narrow a filter on them, and filtering the whole table
    # decodes every token list (8 s at 2% of the paper, linear in the table; now 0.5 s).
    light = [
        labels.scan_shard(name).select("rollout_id", "split", shard=pl.lit(name))
        for name in labels.shard_names
    ]
    if not light or not tokenizer:
        return None
    first = pl.concat(light).sort(pl.col("split") != "val", "rollout_id").head(1).collect()
    if first.is_empty():
        return None
    frame = (
        labels.scan_shard(first["shard"][0])
        .filter(pl.col("rollout_id") == first["rollout_id"][0])
        .collect()
    )
    try:
        decode = labels.tokenizer().decode
    except (OSError, ValueError, TracefactoryError) as e:
        logger.warning("card: no decoded example, tokenizer %s did not load: %s", tokenizer, e)
        return None
    row = frame.row(0, named=True)
    start = row["supervised_start"]
    context, rollout = decode(row["input_ids"][:start]), decode(row["input_ids"][start:])
    return (
        f"```text\n{context[-chars:]}\n```\n\nRoll-out (class {row['label']}, "
        f"{CLASS_NAMES[row['label']]}):\n\n```text\n{rollout[:chars]}\n```"
    )


def export_dataset(config: DatasetConfig, params: Params | None = None) -> ExportSummary:
    """Build the dataset folder: its three configs, the figures and the card.

    Args:
        config: the ``dataset`` params section.
        params: all params, cited in the card's provenance (models, sampling, seeds).

    Returns:
        The files and rows written per config and split.
    """
    final = Path(config.output_dir)
    require_replaceable(final, PROVENANCE_FILE, "dataset.output_dir")
    with TableLock(final):
        return _export(final, config, params)


def _export(final: Path, config: DatasetConfig, params: Params | None) -> ExportSummary:
    labels = TableReader(config.labels_dir)
    summary = ExportSummary(folder=final, code=code_version())
    with atomic_folder(final) as staging:
        writers = {
            "default": write_default(labels, staging / "default", config),
            "openr1_vm": write_openr1_vm(labels, staging / "openr1_vm", config),
            "text": write_text(labels, TableReader(config.problems_dir), staging / "text", config),
        }
        for name, writer in writers.items():
            summary.files[name], summary.rows[name] = writer.close()
        hashes = input_hashes(config)  # before reading them: the tables the card describes
        stats = collect_stats(config.labels_dir, config.verdicts_dir)
        figures = draw_figures(stats, staging / "figures")
        tokenizer = labels.metadata.get("tokenizer", "")
        example = decoded_example(labels, tokenizer)
        card = render_card(
            stats, summary.files, figures, config, hashes, tokenizer, params, example
        )
        (staging / "README.md").write_text(card)
        (staging / PROVENANCE_FILE).write_text(
            render_provenance(hashes, config, params, summary.code)
        )
        record_folder(staging, (".parquet",))  # training checks the files against it
    logger.info("dataset folder %s: rows %s", final, summary.rows)
    return summary
