"""Planning batches: the rows of a step are a function of (seed, step); padding stays low."""

import numpy as np

from tracefactory.valuemodel.batching import micro_batches, step_rows, steps_per_epoch


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
    from tracefactory.valuemodel.batching import pair_steps_per_epoch, step_pairs

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
