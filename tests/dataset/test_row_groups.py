"""Hub-safe files at paper row sizes: row groups and files bounded by bytes, whatever the rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tracefactory.dataset.config import DatasetConfig
from tracefactory.dataset.export import byte_bounded, write_default, write_openr1_vm
from tracefactory.io import ShardWriter, SplitFileWriter, TableReader
from tracefactory.schemas import load_schema

PAPER_ROW_TOKENS = 16_384  # a roll-out at the paper's cap: prompt + roll-in prefix + roll-out
ROLLOUTS_PER_PROBLEM = 56  # 14 roll-ins x 4 branch points: one openr1_vm row
HUB_VIEWER_LIMIT = 300 * 10**6  # bytes: the viewer refuses larger row groups


def _paper_labels(folder: Path, problems: int) -> TableReader:
    """A labels table of ``problems`` x 56 rows of 16,384 tokens, half of them supervised.

    Token ids cycle (so the files compress to little on disk); row-group bytes are uncompressed.
    """
    rows = problems * ROLLOUTS_PER_PROBLEM
    start = PAPER_ROW_TOKENS // 2
    ids = (np.arange(rows * PAPER_ROW_TOKENS, dtype=np.int64) % 151_000).astype(np.int32)
    offsets = np.arange(rows + 1, dtype=np.int32) * PAPER_ROW_TOKENS
    label_offsets = np.arange(rows + 1, dtype=np.int32) * (PAPER_ROW_TOKENS - start)
    problem = [f"p{i // ROLLOUTS_PER_PROBLEM:04d}" for i in range(rows)]
    schema = load_schema("labels").arrow
    table = pa.table(
        {
            "rollout_id": [f"{p}-o{i:03d}" for i, p in enumerate(problem)],
            "rollin_id": [f"{p}-r{i // 4:03d}" for i, p in enumerate(problem)],
            "problem_id": problem,
            "source": ["sim"] * rows,
            "rollin_policy": ["sim"] * rows,
            "rollout_policy": ["sim"] * rows,
            "split": ["val" if p == "p0000" else "train" for p in problem],
            "input_ids": pa.ListArray.from_arrays(offsets, ids),
            "supervised_start": np.full(rows, start, dtype=np.int32),
            "cut_position": np.full(rows, start - 20, dtype=np.int32),
            "rollin_length": np.full(rows, PAPER_ROW_TOKENS, dtype=np.int32),
            "label": np.ones(rows, dtype=np.int8),
            "token_labels": pa.ListArray.from_arrays(
                label_offsets, np.ones(rows * (PAPER_ROW_TOKENS - start), dtype=np.int8)
            ),
            "branch_value": np.ones(rows, dtype=np.float32),
            "branch_count": np.ones(rows, dtype=np.int32),
        },
        schema=schema,
    )
    metadata = {"producer": "test", "params_hash": "x", "tokenizer": "t", "tokenizer_hash": "t"}
    writer = ShardWriter(folder, "labels", metadata)
    writer.write("shard-00000", table)  # the label stage keeps a problem in one shard
    writer.finalize()
    return TableReader(folder)


def _row_groups(folder: Path) -> list[tuple[int, int]]:
    """(Arrow bytes read back, Parquet's uncompressed bytes) of every row group under ``folder``."""
    groups = []
    for path in sorted(folder.glob("*.parquet")):
        file = pq.ParquetFile(path)
        for i in range(file.metadata.num_row_groups):
            arrow = file.read_row_group(i).nbytes
            groups.append((arrow, file.metadata.row_group(i).total_byte_size))
    return groups


@pytest.mark.integration
def test_paper_size_rows_make_row_groups_under_the_hub_viewer_limit(tmp_path):
    labels = _paper_labels(tmp_path / "labels", problems=40)  # 2,240 rows, 165 MB of Arrow
    config = DatasetConfig()  # 128 MiB row groups
    default = write_default(labels, tmp_path / "default", config)
    openr1_vm = write_openr1_vm(labels, tmp_path / "openr1_vm", config)
    _, default_rows = default.close()
    _, openr1_vm_rows = openr1_vm.close()
    assert sum(default_rows.values()) == 40 * ROLLOUTS_PER_PROBLEM
    assert sum(openr1_vm_rows.values()) == 40

    for config_name in ("default", "openr1_vm"):
        groups = _row_groups(tmp_path / config_name)
        assert len(groups) > 2, config_name  # one 2,048-row batch or shard would be one group
        # What a reader holds per row group: the cap (read back with a few % more buffer
        # padding than was written), and near it, not needlessly small.
        largest = max(arrow for arrow, _ in groups)
        assert 100 * 10**6 < largest <= 1.05 * config.row_group_bytes, groups
        assert max(parquet for _, parquet in groups) < HUB_VIEWER_LIMIT


def test_byte_bounded_slices_cover_the_table_in_order_under_the_cap():
    lengths = [1, 4000, 3, 3, 20_000, 7, 7, 7, 9000, 2]  # rows of very different sizes
    table = pa.table({"ids": [list(range(n)) for n in lengths]})
    parts = list(byte_bounded(table, max_bytes=40_000))
    assert pa.concat_tables(parts).equals(table)
    # every slice is under the cap, except the rows larger than it alone (20,000 and 9,000 int64)
    assert all(p.nbytes <= 40_000 or p.num_rows == 1 for p in parts)
    assert [len(p["ids"][0]) for p in parts if p.nbytes > 40_000] == [20_000, 9000]


def test_files_rotate_before_a_write_takes_them_past_max_file_bytes(tmp_path):
    schema = load_schema("dataset_openr1_vm")
    row = {
        "problem_id": "p",
        "split": "train",
        "roll_in_ids": [[1] * 1000],
        "roll_outs_ids": [[2] * 1000],
        "labels": [1],
    }
    columns = [c.name for c in schema.columns]
    table = pa.Table.from_pylist([{k: row[k] for k in columns}] * 10, schema=schema.arrow)
    files = SplitFileWriter(tmp_path, schema, {}, rows_per_file=10**6, max_file_bytes=200_000)
    for _ in range(5):
        files.write("train", table)  # ~80 KB each: two writes fit a file, a third does not
    names, rows = files.close()
    assert rows == {"train": 50}
    assert len(names["train"]) == 3
    sizes = [pq.ParquetFile(tmp_path / n).metadata.num_rows for n in names["train"]]
    assert sizes == [20, 20, 10]
