"""The label stage on small real tables: joins, per-token targets, drops, splits, resume."""

import json
import shutil

import polars as pl
import pytest
import yaml
from pipeline_tables import TOKENIZER, TableSpec, label_config, write_tables
from typer.testing import CliRunner

from tracefactory.cli import app
from tracefactory.errors import ShardError
from tracefactory.io import ShardWriter, TableReader
from tracefactory.labels.build import value_split
from tracefactory.labels.stage import LabelStage
from tracefactory.stage import run_stage


def _run(root, **overrides):
    config = label_config(root, **overrides)
    summary = run_stage(LabelStage(config), config.output_dir)
    return summary, TableReader(config.output_dir)


def test_rows_hold_context_then_rollout_with_per_token_outcome(tmp_path):
    write_tables(tmp_path)
    _, labels = _run(tmp_path, problems_per_shard=2)
    rows = labels.read().to_pylist()
    rollins = {r["rollin_id"]: r for r in TableReader(tmp_path / "rollins").read().to_pylist()}
    rollouts = {r["rollout_id"]: r for r in TableReader(tmp_path / "rollouts").read().to_pylist()}
    assert rows
    for row in rows:
        rollin, rollout = rollins[row["rollin_id"]], rollouts[row["rollout_id"]]
        context = rollin["prompt_ids"] + rollin["token_ids"][: rollout["cut_position"]]
        assert row["input_ids"] == context + rollout["token_ids"]
        assert row["supervised_start"] == len(context)
        assert row["token_labels"] == [row["label"]] * len(rollout["token_ids"])
        assert row["rollin_length"] == len(rollin["token_ids"])
        assert row["rollin_policy"] == rollin["policy"]


def test_branch_value_is_mean_success_of_siblings(tmp_path):
    write_tables(tmp_path, TableSpec(samples_per_cut=3))
    _, labels = _run(tmp_path)
    frame = pl.from_arrow(labels.read())
    cut = pl.col("rollout_id").str.replace(r"-s\d+$", "")
    expected = frame.group_by(cut.alias("branch")).agg(
        (pl.col("label") == 1).mean().alias("mean"), pl.len().alias("n")
    )
    joined = frame.with_columns(cut.alias("branch")).join(expected, on="branch")
    assert (joined["branch_count"] == joined["n"]).all()
    assert ((joined["branch_value"] - joined["mean"]).abs() < 1e-6).all()
    assert set(joined["branch_count"].unique()) == {3}


def test_all_failed_problems_are_dropped_and_counted(tmp_path):
    write_tables(tmp_path, TableSpec(hopeless={0, 3}))
    summary, labels = _run(tmp_path)
    per_problem = 3 * 2 * 2
    assert summary.stats["dropped_all_failed_problems"] == 2
    assert summary.stats["dropped_all_failed"] == 2 * per_problem
    assert set(pl.from_arrow(labels.read())["problem_id"]) == {"p001", "p002", "p004", "p005"}


def test_keeping_failed_problems_when_configured(tmp_path):
    write_tables(tmp_path, TableSpec(hopeless={0}))
    summary, labels = _run(tmp_path, drop_all_failed=False)
    assert labels.num_rows == 6 * 3 * 2 * 2
    assert summary.stats.get("dropped_all_failed", 0) == 0


def test_ungraded_and_held_out_problems_are_counted_not_labelled(tmp_path):
    write_tables(tmp_path, TableSpec(hopeless=set(), ungraded=3, problem_splits={1: "test"}))
    summary, labels = _run(tmp_path)
    assert summary.stats["dropped_no_verdict"] == 3
    assert summary.stats["dropped_problem_split"] == 12
    assert labels.num_rows == 6 * 12 - 12 - 3
    assert summary.stats["rollouts"] == labels.num_rows


def test_traces_the_grader_failed_on_are_left_out_and_counted(tmp_path):
    """A verdict with reason error has no label: no class is known, so nothing is trained on."""
    write_tables(tmp_path, TableSpec(hopeless=set(), errored=2))
    errored = TableReader(tmp_path / "verdicts").scan().filter(pl.col("reason") == "error")
    errored_ids = set(errored.collect()["trace_id"])
    summary, labels = _run(tmp_path)
    assert len(errored_ids) == 2
    assert summary.stats["dropped_no_verdict"] == 2
    assert not errored_ids & set(labels.read().column("rollout_id").to_pylist())


def test_split_is_by_problem_and_deterministic(tmp_path):
    write_tables(tmp_path, TableSpec(problems=40, hopeless=set(), success_rate=0.9))
    _, labels = _run(tmp_path, val_fraction=0.3, problems_per_shard=7)
    frame = pl.from_arrow(labels.read())
    per_problem = frame.group_by("problem_id").agg(pl.col("split").n_unique().alias("n"))
    assert (per_problem["n"] == 1).all()
    splits = dict(frame.select("problem_id", "split").unique().iter_rows())
    assert splits == {p: value_split(p, 0.3) for p in splits}
    assert 0 < sum(s == "val" for s in splits.values()) < len(splits)


def test_val_problems_puts_exactly_that_many_problems_in_val(tmp_path):
    write_tables(tmp_path, TableSpec(problems=40, hopeless=set(), success_rate=0.9))
    _, labels = _run(tmp_path, val_problems=7, problems_per_shard=6)
    frame = pl.from_arrow(labels.read())
    val = frame.filter(pl.col("split") == "val")["problem_id"].unique()
    assert val.len() == 7 and frame["problem_id"].n_unique() == 40


@pytest.mark.parametrize("asked", [3, 7])
def test_val_problems_are_counted_after_unsolved_problems_are_dropped(tmp_path, asked):
    """Half the problems are never solved: val still holds exactly the problems asked for."""
    write_tables(tmp_path, TableSpec(problems=24, hopeless=set(range(0, 24, 2))))
    _, labels = _run(tmp_path, val_problems=asked, problems_per_shard=5)
    frame = pl.from_arrow(labels.read())
    assert frame["problem_id"].n_unique() == 12
    assert frame.filter(pl.col("split") == "val")["problem_id"].n_unique() == asked


def test_metadata_carries_the_rollouts_tokenizer(tmp_path):
    write_tables(tmp_path)
    _, labels = _run(tmp_path)
    assert labels.metadata["tokenizer"] == "tracefactory:tiny"
    assert labels.metadata["tokenizer_hash"] == TOKENIZER["tokenizer_hash"]
    assert labels.metadata["producer"] == "label"


def test_rerun_skips_finished_shards(tmp_path):
    write_tables(tmp_path)
    first, labels = _run(tmp_path, problems_per_shard=2)
    second, again = _run(tmp_path, problems_per_shard=2)
    assert second.shards_skipped == first.shards_planned == 3
    assert again.num_rows == labels.num_rows


def test_rows_do_not_depend_on_shard_size(tmp_path):
    """A shard reads the range of its problem ids; a problem in that range with roll-ins but no
    roll-outs (p002 here, inside the shard p001-p003) must add no row, count or drop."""
    write_tables(tmp_path / "all", TableSpec(problems=7, hopeless={0, 4}))
    for name in ("problems", "rollins", "verdicts"):
        shutil.copytree(tmp_path / "all" / name, tmp_path / name)
    frame = pl.from_arrow(TableReader(tmp_path / "all" / "rollouts").read())
    writer = ShardWriter(
        tmp_path / "rollouts", "rollouts", TableReader(tmp_path / "all" / "rollouts").metadata
    )
    writer.write("part-0", frame.filter(pl.col("problem_id") != "p002"))
    writer.finalize()
    rows, summaries = {}, {}
    for size in (1, 2, 100):
        shutil.rmtree(tmp_path / "labels", ignore_errors=True)
        summaries[size], labels = _run(tmp_path, problems_per_shard=size)
        rows[size] = labels.read().to_pylist()
    assert rows[1] == rows[2] == rows[100]
    assert "p002" not in {row["problem_id"] for row in rows[2]}
    assert summaries[2].shards_planned == 3
    assert summaries[1].stats == summaries[2].stats == summaries[100].stats


def test_rollout_of_unknown_rollin_names_it(tmp_path):
    write_tables(tmp_path)
    shutil.rmtree(tmp_path / "rollins")
    write_tables(tmp_path / "other", TableSpec(rollins_per_problem=1))
    shutil.copytree(tmp_path / "other" / "rollins", tmp_path / "rollins")
    with pytest.raises(ShardError, match="rollin_id missing from the rollins table"):
        _run(tmp_path)


def test_label_command_writes_table_and_metrics(tmp_path, monkeypatch):
    write_tables(tmp_path)
    params = tmp_path / "params.yaml"
    section = label_config(tmp_path).model_dump(mode="json")
    params.write_text(yaml.safe_dump({"label": section}))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["label", "--params", str(params)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "reports" / "label" / "metrics.json").read_text())
    assert metrics["rows"] == TableReader(tmp_path / "labels").num_rows
    assert metrics["stats"]["dropped_all_failed_problems"] == 1
