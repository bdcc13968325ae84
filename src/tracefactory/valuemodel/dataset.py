"""The published dataset as lazily fetched training rows (either config, or the official layout).

The trainer reads the dataset only through its columns, so the exported folder, a Hub download and
the paper's OpenR1-VM train the same way. ``datasets`` converts the Parquet files once into its
memory-mapped Arrow cache; a split here keeps only per-row scalars in memory (length, roll-in
length, class, problem), a few bytes a row, and takes the token ids of a micro-batch's rows from
the mapped table when the micro-batch is built. The scalars are read one cache file at a time
from a mapping of its own, released before the next file (see ``_scan``). Memory therefore does
not grow with the data beyond those few bytes a row.

Rows longer than ``max_length`` are truncated as the official collator does: the roll-in (the
context) is kept whole and the roll-out is cut; the row keeps its class. A row whose roll-in alone
fills ``max_length`` (or whose roll-out is empty) has no roll-out token left to learn from: it is
dropped and counted, or, with ``keep_without_rollout``, kept in the train split as the official
trainer keeps it (cut at ``max_length``; zero loss, counted in the step's mean). Validation never
holds such rows: its metrics score roll-out tokens.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from tracefactory.errors import ConfigError, SchemaError
from tracefactory.models import local_folder
from tracefactory.stats import Stats
from tracefactory.valuemodel.batching import IGNORE_LABEL
from tracefactory.valuemodel.loading import (
    data_files,
    fingerprint,
    load_splits,
    tokenizer_metadata,
)

logger = logging.getLogger(__name__)

HUB_SPLITS = {"train": "train", "val": "validation"}  # value-model split -> Hub split name
_DEFAULT_COLUMNS = {"input_ids", "supervised_start", "token_labels", "label"}
_OPENR1_COLUMNS = {"roll_in_ids", "roll_outs_ids", "labels"}


class Layout(StrEnum):
    """How a dataset's rows hold roll-outs, recognised by their columns."""

    DEFAULT = "default"  # one row per roll-out: input_ids, supervised_start, token_labels, label
    OPENR1_VM = "openr1_vm"  # one row per problem: aligned roll_in_ids, roll_outs_ids, labels


class RowStat(StrEnum):
    """What happened to the dataset's roll-outs on the way to training rows."""

    READ = "rows_read"
    TRAIN = "rows_train"
    VAL = "rows_val"
    TRUNCATED = "rows_truncated"  # roll-out cut at max_length, roll-in and class kept
    TRUNCATED_TOKENS = "tokens_truncated"  # roll-out tokens cut off
    ROLLIN_TOO_LONG = "dropped_rollin_too_long"  # roll-in alone reaches max_length
    NO_ROLLOUT_TOKENS = "dropped_no_rollout_tokens"  # an empty roll-out: nothing to learn
    KEPT_NO_ROLLOUT = "rows_train_no_rollout_tokens"  # kept anyway (keep_without_rollout)


@dataclass(frozen=True)
class DatasetSplit:
    """One split as per-row scalars plus the memory-mapped token columns they index.

    Row ``i`` is roll-out ``source[i]`` of the dataset: ``context[i]`` ids of prompt and roll-in
    (no loss), then ``lengths[i] - context[i]`` roll-out ids labelled with the class ``label[i]``
    (or, in the default layout, the row's own ``token_labels``).
    """

    layout: Layout
    columns: dict[str, pa.ChunkedArray]  # token columns, one entry per roll-out (not per row)
    source: np.ndarray  # (N,) int64 roll-out index in ``columns``
    lengths: np.ndarray  # (N,) int64 tokens after truncation
    supervised_start: np.ndarray  # (N,) int64 context tokens
    label: np.ndarray  # (N,) int8 trajectory class
    branch_value: np.ndarray  # (N,) float32; NaN where the layout has none
    problem_id: np.ndarray  # (N,) int64 problem index (within-problem metrics group by it)

    @property
    def num_rows(self) -> int:
        return len(self.source)

    def sequence(self, row: int) -> np.ndarray:
        """Token ids of row ``row`` after truncation, ``(lengths[row],)`` int64."""
        return self._fetch(np.asarray([row]))[0][0]

    def batch(
        self, rows: np.ndarray, device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        """Right-padded ``rows``: input_ids, attention_mask, targets (B, T); branch_value (B,)."""
        width = int(self.lengths[rows].max())
        ids = np.zeros((len(rows), width), dtype=np.int64)
        targets = np.full((len(rows), width), IGNORE_LABEL, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, (row_ids, row_targets) in enumerate(self._fetch(rows)):
            ids[i, : len(row_ids)] = row_ids
            targets[i, : len(row_ids)] = row_targets
            mask[i, : len(row_ids)] = 1
        arrays = {"input_ids": ids, "attention_mask": mask, "targets": targets}
        out = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
        out["branch_value"] = torch.from_numpy(self.branch_value[rows]).to(device)
        return out

    @cached_property
    def _chunk_ends(self) -> dict[str, np.ndarray]:
        """Per token column, the entry each chunk ends at. Computed once: listing a column's
        chunks costs ~0.7 us a chunk, and the chunks grow with the dataset, so per micro-batch it
        made an epoch quadratic in the dataset (2% of the paper: 54 chunks, 31,000 micro-batches;
        100%: ~2,700 chunks, ~1.6M micro-batches, ~1.7 h an epoch)."""
        return {k: np.cumsum([len(chunk) for chunk in v.chunks]) for k, v in self.columns.items()}

    def _fetch(self, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(ids, targets) of ``rows``, truncated; reads only these rows' pages of the table."""
        indices = self.source[rows]
        taken = {k: _entries(v, self._chunk_ends[k], indices) for k, v in self.columns.items()}
        fetched = []
        for i, row in enumerate(rows):
            length, start = int(self.lengths[row]), int(self.supervised_start[row])
            targets = np.full(length, IGNORE_LABEL, dtype=np.int64)
            if self.layout == Layout.DEFAULT:
                ids = taken["input_ids"][i][:length]
                targets[start:] = taken["token_labels"][i][: length - start]
            else:
                ids = np.concatenate([taken["roll_in_ids"][i], taken["roll_outs_ids"][i]])[:length]
                targets[start:] = self.label[row]
            fetched.append((ids.astype(np.int64), targets))
        return fetched


def _entries(column: pa.ChunkedArray, ends: np.ndarray, indices: np.ndarray) -> list[np.ndarray]:
    """Entries ``indices`` of a list column (whose chunks end at entries ``ends``) as numpy
    arrays, read chunk by chunk.

    ``ChunkedArray.take`` of a list column concatenates every chunk first: a copy of the whole
    column per micro-batch. Indexing each entry's own chunk reads only that entry's pages.
    """
    chunk_of = np.searchsorted(ends, indices, side="right")
    entries = []
    for index, c in zip(indices.tolist(), chunk_of.tolist(), strict=True):
        local = index - (int(ends[c - 1]) if c else 0)
        entries.append(column.chunk(c)[local].values.to_numpy(zero_copy_only=False))
    return entries


def detect_layout(table: pa.Table, where: str) -> Layout:
    """The layout whose columns ``table`` has.

    Raises:
        SchemaError: the table has the columns of neither layout.
    """
    names = set(table.column_names)
    if _DEFAULT_COLUMNS <= names:
        return Layout.DEFAULT
    if _OPENR1_COLUMNS <= names:
        return Layout.OPENR1_VM
    raise SchemaError(
        f"{where}: columns {sorted(names)} match neither the default layout "
        f"{sorted(_DEFAULT_COLUMNS)} nor the OpenR1-VM layout {sorted(_OPENR1_COLUMNS)}"
    )


def to_split(
    table: pa.Table, max_length: int, stats: Stats, where: str, arrow_files: tuple[str, ...] = ()
) -> DatasetSplit:
    """Per-row scalars of ``table`` (truncated to ``max_length``) over its token columns; rows with
    no roll-out token left are still in it (``without_rollout_rows`` drops them, counted).

    ``arrow_files`` are the files ``table`` is mapped from, in row order; the scalars are read
    from them one at a time (``_scan``). Without them the scalars are read from ``table``.
    """
    layout = detect_layout(table, where)
    if layout == Layout.DEFAULT:
        columns = {k: table.column(k) for k in ("input_ids", "token_labels")}
    else:  # one entry per roll-out: flattening reads only each chunk's first and last offset
        columns = {k: pc.list_flatten(table.column(k)) for k in ("roll_in_ids", "roll_outs_ids")}
    parts = _scan(table, arrow_files, layout, where)
    if sum(len(part.label) for part in parts) != len(next(iter(columns.values()))):
        raise SchemaError(f"{where}: its Arrow cache files {arrow_files} do not hold its rows")
    full, start, label, branch = (
        np.concatenate([getattr(part, f) for part in parts])
        for f in ("full", "start", "label", "branch")
    )
    problem = _problem_index(parts)
    return _truncate(layout, columns, full, start, label, branch, problem, max_length, stats)


@dataclass(frozen=True)
class _Scalars:
    """Per-roll-out scalars of one part of a split (numpy copies, nothing mapped)."""

    full: np.ndarray  # int64 tokens before truncation
    start: np.ndarray  # int64 context tokens
    label: np.ndarray  # int8 class
    branch: np.ndarray  # float32 branch value; NaN where the layout has none
    problem: np.ndarray  # int64 index into ``problem_names``
    problem_names: list  # the part's problems, as ids (default layout) or row numbers
    table_rows: int  # rows of the part's table (problems, in the OpenR1-VM layout)


def _scan(
    table: pa.Table, arrow_files: tuple[str, ...], layout: Layout, where: str
) -> list[_Scalars]:
    """The scalars of ``table``, read one Arrow cache file at a time.

    Reading a scalar from a memory map brings in the pages around it (the kernel maps up to
    64 KiB around each page fault), and beside every record batch's offsets lie its token ids:
    one pass over the shared mapping kept ~5% of the token bytes resident (+300 MiB at 4 GB of
    token ids). Each file here gets its own mapping, released when its scalars are copied out,
    so the pass holds at most one file's pages.
    """
    if not arrow_files:
        return [_scalars(table, layout, where, 0)]
    parts, rows = [], 0
    for path in arrow_files:
        with pa.memory_map(path) as source:
            parts.append(_scalars(pa.ipc.open_stream(source).read_all(), layout, where, rows))
        rows += parts[-1].table_rows
    return parts


def _scalars(table: pa.Table, layout: Layout, where: str, first_row: int) -> _Scalars:
    """The per-roll-out scalars of ``table``, whose first row is row ``first_row`` of its split."""
    if layout == Layout.DEFAULT:
        full = _lengths(table.column("input_ids"))
        start = table.column("supervised_start").to_numpy().astype(np.int64)
        if np.any(_lengths(table.column("token_labels")) != full - start):
            raise SchemaError(f"{where}: token_labels do not cover input_ids[supervised_start:]")
        problems = pc.dictionary_encode(table.column("problem_id")).combine_chunks()
        return _Scalars(
            full=full,
            start=start,
            label=table.column("label").to_numpy().astype(np.int8),
            branch=table.column("branch_value").to_numpy().astype(np.float32),
            problem=problems.indices.to_numpy().astype(np.int64),
            problem_names=problems.dictionary.to_pylist(),
            table_rows=table.num_rows,
        )
    per_problem = _lengths(table.column("labels"))
    for name in ("roll_in_ids", "roll_outs_ids"):
        if np.any(_lengths(table.column(name)) != per_problem):
            raise SchemaError(f"{where}: {name} and labels differ in length in some row")
    start = _lengths(pc.list_flatten(table.column("roll_in_ids")))
    label = pc.list_flatten(table.column("labels")).to_numpy().astype(np.int8)
    return _Scalars(
        full=start + _lengths(pc.list_flatten(table.column("roll_outs_ids"))),
        start=start,
        label=label,
        branch=np.full(len(label), np.nan, dtype=np.float32),
        problem=np.repeat(np.arange(table.num_rows, dtype=np.int64), per_problem),
        problem_names=list(range(first_row, first_row + table.num_rows)),
        table_rows=table.num_rows,
    )


def _problem_index(parts: list[_Scalars]) -> np.ndarray:
    """One int64 index per roll-out, numbering the problems of all parts together."""
    index: dict = {}
    numbered = []
    for part in parts:
        ids = np.asarray([index.setdefault(n, len(index)) for n in part.problem_names], np.int64)
        numbered.append(ids[part.problem])
    return np.concatenate(numbered)


def _lengths(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)


def _truncate(
    layout, columns, full, start, label, branch, problem, max_length, stats
) -> DatasetSplit:
    """Keep the roll-in, cut the roll-out at ``max_length`` (a roll-in that alone reaches it is
    cut too, leaving no roll-out token)."""
    cut = (full > max_length) & (start < max_length)
    stats.update(RowStat.READ, len(full))
    stats.update(RowStat.TRUNCATED, int(cut.sum()))
    stats.update(RowStat.TRUNCATED_TOKENS, int((full[cut] - max_length).sum()))
    return DatasetSplit(
        layout=layout,
        columns=columns,
        source=np.arange(len(full), dtype=np.int64),
        lengths=np.minimum(full, max_length),
        supervised_start=np.minimum(start, max_length),
        label=label,
        branch_value=branch,
        problem_id=problem,
    )


def without_rollout_rows(split: DatasetSplit, max_length: int, stats: Stats) -> DatasetSplit:
    """``split`` without its rows that have no roll-out token, counted by why."""
    empty = split.lengths == split.supervised_start
    rollin_too_long = empty & (split.supervised_start >= max_length)
    stats.update(RowStat.ROLLIN_TOO_LONG, int(rollin_too_long.sum()))
    stats.update(RowStat.NO_ROLLOUT_TOKENS, int((empty & ~rollin_too_long).sum()))
    return _subset(split, ~empty)


def hold_out(split: DatasetSplit, problems: int, seed: int) -> tuple[DatasetSplit, DatasetSplit]:
    """(train, validation): ``problems`` problems drawn by ``seed`` go to validation, whole."""
    ids = np.unique(split.problem_id)
    if len(ids) <= problems:
        raise ConfigError(
            f"the dataset has no validation split and only {len(ids)} problems: lower "
            f"train.holdout_problems (now {problems}) to hold some out for validation"
        )
    held = np.random.default_rng([seed, len(ids)]).permutation(ids)[:problems]
    in_val = np.isin(split.problem_id, held)
    return _subset(split, ~in_val), _subset(split, in_val)


def _subset(split: DatasetSplit, keep: np.ndarray) -> DatasetSplit:
    fields = ("source", "lengths", "supervised_start", "label", "branch_value", "problem_id")
    return DatasetSplit(split.layout, split.columns, **{f: getattr(split, f)[keep] for f in fields})


def open_dataset(
    dataset: str,
    config: str,
    revision: str | None,
    max_length: int,
    holdout: tuple[int, int],
    cache_dir: str | None = None,
    keep_without_rollout: bool = False,
) -> tuple[DatasetSplit, DatasetSplit, Stats, dict[str, str]]:
    """(train, validation, row stats, data identity) of a dataset folder or Hub id.

    Train rows with no roll-out token left after the cut are dropped, or kept with
    ``keep_without_rollout`` (the official trainer's choice); validation rows never keep them.

    The identity holds the data ``fingerprint`` (file names and contents) and the ``tokenizer``
    and ``tokenizer_hash`` the producer recorded in the Parquet metadata (absent in datasets made
    by other tools, such as the paper's OpenR1-VM). A dataset without a validation split (the
    paper's) has ``holdout = (problems, seed)`` of its train problems held out instead.

    Raises:
        ConfigError: the dataset cannot be found or loaded, or lacks a train split.
        SchemaError: its columns are neither layout's, or its lists are not aligned.
    """
    folder = local_folder(dataset, "train.dataset", repo_type="dataset", revision=revision)
    files = data_files(folder, config)
    identity = {"fingerprint": fingerprint(files, folder), **tokenizer_metadata(files)}
    tables = load_splits(folder, config, cache_dir, files, identity["fingerprint"])
    if HUB_SPLITS["train"] not in tables:
        raise ConfigError(f"dataset {dataset} ({config}) has no train split: {sorted(tables)}")
    stats = Stats()
    split = {
        name: to_split(
            tables[hub].table,
            max_length,
            stats,
            f"{dataset} [{config}/{hub}]",
            tables[hub].arrow_files,
        )
        for name, hub in HUB_SPLITS.items()
        if hub in tables
    }
    if not keep_without_rollout:
        split["train"] = without_rollout_rows(split["train"], max_length, stats)
    if "val" not in split:
        logger.info("%s has no validation split: holding out %d problems", dataset, holdout[0])
        split["train"], split["val"] = hold_out(split["train"], *holdout)
    split["val"] = without_rollout_rows(split["val"], max_length, stats)
    if keep_without_rollout:
        train = split["train"]
        stats.update(RowStat.KEPT_NO_ROLLOUT, int((train.lengths == train.supervised_start).sum()))
    stats.update(RowStat.TRAIN, split["train"].num_rows)
    stats.update(RowStat.VAL, split["val"].num_rows)
    logger.info("dataset %s (%s, pid %d): %s", dataset, config, os.getpid(), stats.as_dict())
    return split["train"], split["val"], stats, identity
