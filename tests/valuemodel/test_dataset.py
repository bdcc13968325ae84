"""The published dataset as training rows: both configs, the official layout, truncation."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from value_datasets import synthetic_dataset, tiny_backbone

from tracefactory.errors import SchemaError
from tracefactory.io import TableReader
from tracefactory.stats import Stats
from tracefactory.valuemodel.batching import IGNORE_LABEL
from tracefactory.valuemodel.dataset import (
    Layout,
    RowStat,
    open_dataset,
    to_split,
    without_rollout_rows,
)
from tracefactory.valuemodel.metrics import predict
from tracefactory.valuemodel.model import ValueModel
from tracefactory.valuemodel.synthetic import synthetic_rows


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("published")
    hash_ = tiny_backbone(root / "policy")
    labels, folder = synthetic_dataset(root, synthetic_rows(30, seed=2), hash_)
    return root, labels, folder


def _open(folder, config="default", max_length=1024, cache=None):
    return open_dataset(str(folder), config, None, max_length, (3, 0), cache)


def _rows(split) -> list[tuple]:
    """Every row as (ids, targets), in a canonical order."""
    batch = split.batch(np.arange(split.num_rows))
    rows = []
    for ids, targets, mask in zip(
        batch["input_ids"], batch["targets"], batch["attention_mask"], strict=False
    ):
        n = int(mask.sum())
        rows.append((tuple(ids[:n].tolist()), tuple(targets[:n].tolist())))
    return sorted(rows)


def test_default_config_gives_the_labels_tables_rows_and_losses(published, tmp_path):
    root, labels, folder = published
    train, val, _, identity = _open(folder, cache=str(tmp_path / "cache"))
    assert identity["tokenizer_hash"] and len(identity["fingerprint"]) == 64
    table = TableReader(labels).read()
    for ours, split in ((train, "train"), (val, "val")):
        rows = table.filter(pa.compute.equal(table.column("split"), split)).to_pylist()
        expected = sorted(
            (
                tuple(r["input_ids"]),
                (IGNORE_LABEL,) * r["supervised_start"] + tuple(r["token_labels"]),
            )
            for r in rows
        )
        assert ours.num_rows == len(rows) > 0
        assert _rows(ours) == expected
    internal = table.filter(pa.compute.equal(table.column("split"), "val"))
    internal_val = to_split(internal, 1024, Stats(), "the labels table")
    model = ValueModel.from_policy(root / "policy")
    ours = predict(model, val, np.arange(val.num_rows), 4, 4096)
    theirs = predict(model, internal_val, np.arange(val.num_rows), 4, 4096)
    np.testing.assert_array_equal(ours.sequence_loss, theirs.sequence_loss)


def test_openr1_vm_config_holds_the_same_rows(published, tmp_path):
    _, _, folder = published
    default_train, default_val, _, _ = _open(folder, cache=str(tmp_path / "cache"))
    train, val, _, identity = _open(folder, "openr1_vm", cache=str(tmp_path / "cache"))
    assert train.layout == Layout.OPENR1_VM and identity["tokenizer_hash"]
    assert _rows(train) == _rows(default_train)
    assert _rows(val) == _rows(default_val)


def test_official_layout_without_card_trains_with_held_out_problems(published, tmp_path):
    """The paper's layout: only roll_in_ids, roll_outs_ids, labels; one train split; no card."""
    _, _, folder = published
    official = tmp_path / "OpenR1-VM"
    (official / "data").mkdir(parents=True)
    paths = sorted((folder / "openr1_vm").glob("*.parquet"))  # validation too: one train split
    for i, path in enumerate(paths):
        table = pq.read_table(path).select(["roll_in_ids", "roll_outs_ids", "labels"])
        name = f"train-{i:05d}-of-{len(paths):05d}.parquet"
        pq.write_table(table.replace_schema_metadata(None), official / "data" / name)
    train, val, stats, identity = _open(official, cache=str(tmp_path / "cache"))
    assert "tokenizer_hash" not in identity
    assert len(np.unique(val.problem_id)) == 3
    assert not set(train.problem_id) & set(val.problem_id)
    default_train, default_val, _, _ = _open(folder, cache=str(tmp_path / "cache"))
    assert sorted(_rows(train) + _rows(val)) == sorted(_rows(default_train) + _rows(default_val))


def test_long_rows_keep_the_rollin_and_class_and_are_counted():
    context = [[1, 2, 3], [1, 2, 3, 4, 5, 6], [1]]
    rollout = [[7, 8, 9, 10], [7], [7, 8]]
    table = pa.table(
        {
            "roll_in_ids": [context],
            "roll_outs_ids": [rollout],
            "labels": pa.array([[2, 1, 0]], pa.list_(pa.int8())),
        }
    )
    stats = Stats()
    whole = to_split(table, max_length=5, stats=stats, where="test")
    kept = whole.batch(np.arange(3))  # as the official collator: the roll-in cut, no loss left
    assert kept["input_ids"][1].tolist() == [1, 2, 3, 4, 5]
    assert (kept["targets"][1] == IGNORE_LABEL).all()
    split = without_rollout_rows(whole, 5, stats)
    assert split.num_rows == 2  # the 6-token roll-in leaves no room for its roll-out
    batch = split.batch(np.arange(2))
    assert batch["input_ids"][0].tolist() == [1, 2, 3, 7, 8]
    assert batch["targets"][0].tolist() == [IGNORE_LABEL] * 3 + [2, 2]
    assert batch["input_ids"][1, :3].tolist() == [1, 7, 8]
    assert split.label.tolist() == [2, 0]
    counts = stats.as_dict()
    assert counts[RowStat.TRUNCATED] == 1 and counts[RowStat.TRUNCATED_TOKENS] == 2
    assert counts[RowStat.ROLLIN_TOO_LONG] == 1


def test_a_rebuilt_folder_is_read_anew_not_from_the_stale_datasets_cache(tmp_path):
    """`datasets` keys its Arrow copy of a folder by file names and times: a rebuild with the
    same file names (a rerun of the dataset stage) was once served the previous build's rows."""
    hash_ = tiny_backbone(tmp_path / "policy")
    cache = str(tmp_path / "cache")
    _, folder = synthetic_dataset(tmp_path / "a", synthetic_rows(12, seed=1), hash_)
    first, _, _, _ = _open(folder, cache=cache)
    rebuilt = tmp_path / "a" / "dataset"
    _, again = synthetic_dataset(tmp_path / "b", synthetic_rows(30, seed=3), hash_)
    for path in again.rglob("*"):  # same folder, same file names, other rows
        if path.is_file():
            target = rebuilt / path.relative_to(again)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    second, _, _, _ = _open(rebuilt, cache=cache)
    expected = sum(pq.read_metadata(p).num_rows for p in (rebuilt / "default").glob("train-*"))
    assert second.num_rows == expected != first.num_rows


def test_token_labels_of_wrong_length_are_a_schema_error():
    table = pa.table(
        {
            "input_ids": [[1, 2, 3, 4]],
            "supervised_start": [2],
            "token_labels": pa.array([[1]], pa.list_(pa.int8())),
            "label": pa.array([1], pa.int8()),
            "problem_id": ["p"],
            "branch_value": pa.array([1.0], pa.float32()),
        }
    )
    with pytest.raises(SchemaError, match="token_labels do not cover"):
        to_split(table, max_length=8, stats=Stats(), where="test")


@pytest.mark.parametrize("config", ["default", "openr1_vm"])
def test_scalars_read_file_by_file_equal_one_pass_over_the_table(published, tmp_path, config):
    """The trainer reads per-row scalars from each Arrow cache file in turn (bounded memory);
    split over three files, problems shared across files, they equal a pass over the table."""
    _, _, folder = published
    table = pa.concat_tables(pq.read_table(p) for p in sorted((folder / config).glob("*.parquet")))
    table = table.replace_schema_metadata(None)
    cuts = [0, table.num_rows // 3 + 1, 2 * table.num_rows // 3, table.num_rows]
    files = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
        files.append(str(tmp_path / f"part-{i}.arrow"))
        with pa.OSFile(files[-1], "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table.slice(a, b - a))
    whole = to_split(table, 40, Stats(), "test")
    by_file = to_split(table, 40, Stats(), "test", tuple(files))
    for field in ("source", "lengths", "supervised_start", "label", "branch_value", "problem_id"):
        np.testing.assert_array_equal(getattr(by_file, field), getattr(whole, field), field)
    assert len(np.unique(whole.problem_id)) > 3
    with pytest.raises(SchemaError, match="cache files"):
        to_split(table, 40, Stats(), "test", tuple(files[:2]))
