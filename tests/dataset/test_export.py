"""The exported folder: both configs load with `datasets`, and their counts match the verdicts."""

import datasets
import polars as pl
import pytest
from pipeline_tables import dataset_config

from tracefactory.dataset.export import export_dataset
from tracefactory.io import TableReader


@pytest.fixture(scope="module")
def exported(labelled):
    config = dataset_config(labelled, rows_per_file=40, problems_per_file=4)
    summary = export_dataset(config)
    return labelled, summary


def _kept_verdicts(root) -> pl.DataFrame:
    """Roll-out verdicts of the problems the label stage keeps (train split, some success)."""
    problems = pl.from_arrow(TableReader(root / "problems").read())
    verdicts = pl.from_arrow(TableReader(root / "verdicts").read())
    train = problems.filter(pl.col("split") == "train")["problem_id"]
    verdicts = verdicts.filter(pl.col("problem_id").is_in(train.implode()))
    solved = verdicts.filter(pl.col("label") == 1)["problem_id"].unique()
    return verdicts.filter(pl.col("problem_id").is_in(solved.implode()))


def _load(path, *args, cache):
    return datasets.load_dataset(str(path), *args, cache_dir=str(cache))


def test_default_config_loads_with_counts_matching_the_verdicts(exported, tmp_path):
    root, summary = exported
    loaded = _load(root / "dataset", cache=tmp_path)
    assert set(loaded) == {"train", "validation"}
    assert len(summary.files["default"]["train"]) > 1  # rows_per_file rotated the files
    expected = _kept_verdicts(root)
    rows = pl.concat([loaded[s].to_polars() for s in loaded])
    assert rows.height == expected.height
    assert sorted(rows["rollout_id"]) == sorted(expected["trace_id"])
    by_class = dict(rows.group_by("label").len().iter_rows())
    assert by_class == dict(expected.group_by("label").len().iter_rows())
    assert set(loaded["validation"]["split"]) == {"val"}


def test_default_config_loads_with_the_parquet_builder(exported, tmp_path):
    root, summary = exported
    loaded = datasets.load_dataset(
        "parquet", data_dir=str(root / "dataset" / "default"), cache_dir=str(tmp_path)
    )
    assert loaded["train"].num_rows == summary.rows["default"]["train"]
    assert loaded["validation"].num_rows == summary.rows["default"]["validation"]


def test_openr1_vm_config_has_three_aligned_lists_per_problem(exported, tmp_path):
    root, _ = exported
    loaded = _load(root / "dataset", "openr1_vm", cache=tmp_path)
    labels = pl.from_arrow(TableReader(root / "labels").read())
    per_problem = {p: g for (p,), g in labels.sort("rollout_id").group_by("problem_id")}
    expected = _kept_verdicts(root)
    assert sum(loaded[s].num_rows for s in loaded) == expected["problem_id"].n_unique()
    for split in loaded:
        for row in loaded[split]:
            n = len(row["labels"])
            assert len(row["roll_in_ids"]) == len(row["roll_outs_ids"]) == n > 0
            assert set(row["labels"]) <= {0, 1, 2}
            rows = per_problem[row["problem_id"]]
            assert row["labels"] == rows["label"].to_list()
            joined = [a + b for a, b in zip(row["roll_in_ids"], row["roll_outs_ids"], strict=True)]
            assert joined == rows["input_ids"].to_list()


def test_rebuild_replaces_the_folder(exported):
    root, _ = exported
    config = dataset_config(root, output_dir=str(root / "again"), rows_per_file=10_000)
    export_dataset(config)
    first = sorted(p.name for p in (root / "again" / "default").iterdir())
    export_dataset(config)
    assert sorted(p.name for p in (root / "again" / "default").iterdir()) == first
    assert not (root / "again.incomplete").exists()
