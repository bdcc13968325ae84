"""Reading the labels table and planning batches: alignment, drops, determinism, padding."""

import numpy as np
import pytest

from tracefactory.errors import SchemaError, StageInputError
from tracefactory.valuemodel.data import (
    IGNORE_LABEL,
    DropReason,
    micro_batches,
    read_labels,
    step_rows,
    steps_per_epoch,
)
from tracefactory.valuemodel.synthetic import synthetic_rows, write_synthetic_labels


@pytest.fixture(scope="module")
def rows():
    return synthetic_rows(num_problems=20, seed=3)


def test_token_targets_align_with_rollout_tokens(rows, tmp_path):
    train, val, _ = read_labels(write_synthetic_labels(tmp_path / "labels", rows), max_length=512)
    assert train.num_rows + val.num_rows == len(rows)
    by_ids = {tuple(r["input_ids"]): r for r in rows}
    for split in (train, val):
        for i in range(split.num_rows):
            row = by_ids[tuple(split.sequence(i).tolist())]
            targets = split.token_targets[split.offsets[i] : split.offsets[i + 1]]
            start = row["supervised_start"]
            assert (targets[:start] == IGNORE_LABEL).all()
            assert targets[start:].tolist() == row["token_labels"]
            assert split.label[i] == row["label"]


def test_rows_longer_than_max_length_are_dropped_and_counted(rows, tmp_path):
    labels = write_synthetic_labels(tmp_path / "labels", rows)
    too_long = sum(len(r["input_ids"]) > 60 for r in rows)
    train, val, stats = read_labels(labels, max_length=60)
    assert stats.as_dict()[DropReason.TOO_LONG] == too_long > 0
    assert train.num_rows + val.num_rows == len(rows) - too_long
    assert train.lengths.max() <= 60


def test_token_labels_of_wrong_length_are_a_schema_error(rows, tmp_path):
    broken = [dict(r) for r in rows]
    broken[5]["token_labels"] = broken[5]["token_labels"][:-1]
    with pytest.raises(SchemaError, match="token_labels do not cover"):
        read_labels(write_synthetic_labels(tmp_path / "labels", broken), max_length=512)


def test_missing_table_is_a_stage_input_error(tmp_path):
    with pytest.raises(StageInputError):
        read_labels(tmp_path / "nothing", max_length=512)


def test_step_rows_are_a_function_of_seed_and_step():
    per_epoch = steps_per_epoch(100, 10)
    epoch0 = np.concatenate([step_rows(100, 10, seed=1, step=s) for s in range(per_epoch)])
    assert sorted(epoch0.tolist()) == list(range(100))  # an epoch sees every row once
    assert np.array_equal(step_rows(100, 10, 1, 3), step_rows(100, 10, 1, 3))
    assert not np.array_equal(step_rows(100, 10, 1, 3), step_rows(100, 10, 2, 3))
    assert not np.array_equal(step_rows(100, 10, 1, 0), step_rows(100, 10, 1, per_epoch))


def test_micro_batches_partition_the_step_within_budget_and_pad_little():
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 400, size=2000)
    rows = rng.permutation(2000)[:256]
    batches = micro_batches(rows, lengths, token_budget=4096, overhead_tokens=256)
    assert sorted(np.concatenate(batches).tolist()) == sorted(rows.tolist())
    assert all(len(b) * lengths[b].max() <= 4096 for b in batches)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert 1 - lengths[rows].sum() / padded < 0.1


def test_micro_batches_deal_each_rank_a_share():
    lengths = np.arange(1, 101)
    rows = np.arange(100)
    shares = [np.concatenate(micro_batches(rows, lengths, 1000, r, 4)) for r in range(4)]
    assert sorted(np.concatenate(shares).tolist()) == list(range(100))
    assert {len(s) for s in shares} == {25}


def test_pair_sampling_takes_two_rollouts_of_each_problem_and_every_problem_once_an_epoch():
    from tracefactory.valuemodel.data import pair_steps_per_epoch, step_pairs

    problem_id = np.repeat(np.arange(10), [1, 3, 4, 2, 5, 3, 3, 2, 6, 4])
    np.random.default_rng(0).shuffle(problem_id)
    per_epoch = pair_steps_per_epoch(problem_id, 4)
    assert per_epoch == 5
    seen = []
    for step in range(per_epoch):
        rows = step_pairs(problem_id, 4, seed=7, step=step)
        pairs = problem_id[rows].reshape(-1, 2)
        assert (pairs[:, 0] == pairs[:, 1]).all()  # both roll-outs of one problem
        seen.extend(pairs[:, 0].tolist())
        np.testing.assert_array_equal(rows, step_pairs(problem_id, 4, seed=7, step=step))
    assert sorted(seen) == list(range(10))
    two = step_pairs(problem_id, 4, seed=7, step=0)
    distinct = [a != b for a, b in two.reshape(-1, 2) if (problem_id == problem_id[a]).sum() > 1]
    assert all(distinct)
