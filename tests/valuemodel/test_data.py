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


def test_problem_pairs_take_two_rollouts_of_each_problem_and_every_problem_once_an_epoch():
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


def test_official_sampler_reads_fixed_adjacent_pairs_and_every_row_once_an_epoch():
    from tracefactory.valuemodel.batching import step_sampler
    from tracefactory.valuemodel.config import Sampler

    counts = [4, 2, 6, 4, 2, 6]  # 12 pairs; rows of a problem need not be contiguous
    problem_id = np.repeat(np.arange(6), counts)
    np.random.default_rng(0).shuffle(problem_id)
    sampler = step_sampler(Sampler.OFFICIAL, problem_id, batch_size=8, seed=1)
    assert sampler.steps_per_epoch == 3  # 12 pairs, 4 a step
    # The fixed pairs: rows (2k, 2k+1) of each problem, in dataset order.
    expected = set()
    for p in range(6):
        rows = np.flatnonzero(problem_id == p)
        expected |= {(int(rows[k]), int(rows[k + 1])) for k in range(0, len(rows), 2)}
    for epoch in range(2):
        steps = [sampler.rows(epoch * 3 + s) for s in range(3)]
        assert all(len(rows) == 8 for rows in steps)
        pairs = [tuple(int(r) for r in rows[i : i + 2]) for rows in steps for i in (0, 2, 4, 6)]
        assert set(pairs) == expected  # every pair, hence every row, exactly once an epoch
    first, second = (np.concatenate([sampler.rows(e * 3 + s) for s in range(3)]) for e in (0, 1))
    assert not np.array_equal(first, second)  # reshuffled each epoch
    np.testing.assert_array_equal(sampler.rows(4), sampler.rows(4))  # a function of the step
    # The run seed does not move the official order (its shuffle seed is (epoch + 1) * 1337).
    other = step_sampler(Sampler.OFFICIAL, problem_id, batch_size=8, seed=2)
    np.testing.assert_array_equal(other.rows(0), sampler.rows(0))


def test_official_sampler_steps_span_epochs_and_an_odd_last_rollout_is_a_pair_of_its_own():
    from tracefactory.valuemodel.batching import step_sampler
    from tracefactory.valuemodel.config import Sampler

    problem_id = np.repeat(np.arange(3), [3, 2, 2])  # 4 pairs: (0, 1), (2,), (3, 4), (5, 6)
    sampler = step_sampler(Sampler.OFFICIAL, problem_id, batch_size=6, seed=0)  # 3 pairs a step
    assert sampler.steps_per_epoch == 4 / 3
    stream = np.concatenate([sampler.rows(s) for s in range(4)])  # 12 pairs: 3 epochs
    epochs = [stream[:7], stream[7:14], stream[14:]]
    assert all(sorted(e.tolist()) == list(range(7)) for e in epochs)
