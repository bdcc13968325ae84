"""The rollin and rollout stages pushed through in this process (no Ray) on the tiny policy."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tracefactory.errors import ConfigError
from tracefactory.generation.config import PolicyConfig, RollinConfig, RolloutConfig, SamplingConfig
from tracefactory.generation.rollin import run_rollin
from tracefactory.generation.rollout import run_rollout
from tracefactory.io import TableReader
from tracefactory.params import Params

CAP = 24


def make_params(tmp_path: Path, problems_dir: Path, tiny_policy: PolicyConfig, seed=7) -> Params:
    other = tiny_policy.model_copy(update={"name": "tiny-b", "weight": 2.0})
    sampling = SamplingConfig(max_response_tokens=CAP)
    return Params(
        seed=seed,
        rollin=RollinConfig(
            problems_dir=str(problems_dir),
            output_dir=str(tmp_path / "rollins"),
            samples_per_problem=3,
            policies=[tiny_policy, other],
            sampling=sampling,
            problems_per_shard=4,
            use_ray=False,
        ),
        rollout=RolloutConfig(
            rollins_dir=str(tmp_path / "rollins"),
            output_dir=str(tmp_path / "rollouts"),
            policy=tiny_policy,
            cuts_per_rollin=2,
            samples_per_cut=2,
            sampling=sampling,
            rollins_per_shard=5,
            use_ray=False,
        ),
    )


def _sorted(directory) -> pl.DataFrame:
    table = TableReader(directory).read()
    return pl.from_arrow(table).sort(table.column_names[0])


def test_rollin_samples_every_train_problem_from_the_pool(tmp_path, problems_dir, tiny_policy):
    params = make_params(tmp_path, problems_dir, tiny_policy)
    summary = run_rollin(params.rollin, params.seed)
    rollins = _sorted(params.rollin.output_dir)
    assert rollins.height == 6 * 3 == summary.rows  # val problems excluded
    assert set(rollins["policy"]) == {"tiny", "tiny-b"}
    per_problem = rollins.group_by("problem_id").agg(pl.col("sample_index").sort())
    assert all(indices == [0, 1, 2] for indices in per_problem["sample_index"].to_list())
    assert rollins["token_ids"].list.len().max() <= CAP
    shards = set(TableReader(params.rollin.output_dir).shard_names)
    assert shards == {"tiny-00000", "tiny-00001", "tiny-b-00000", "tiny-b-00001"}


def test_rollin_is_reproducible_and_seed_dependent(tmp_path, problems_dir, tiny_policy):
    first = make_params(tmp_path / "a", problems_dir, tiny_policy)
    again = make_params(tmp_path / "b", problems_dir, tiny_policy)
    other = make_params(tmp_path / "c", problems_dir, tiny_policy, seed=8)
    for params in (first, again, other):
        run_rollin(params.rollin, params.seed)
    a, b, c = (_sorted(p.rollin.output_dir) for p in (first, again, other))
    assert a.equals(b)
    assert set(a["rollin_id"]).isdisjoint(set(c["rollin_id"]))
    assert a["token_ids"].to_list() != c.sort("problem_id", "sample_index")["token_ids"].to_list()


def test_rollout_continues_every_branch_point_within_the_cap(tmp_path, problems_dir, tiny_policy):
    params = make_params(tmp_path, problems_dir, tiny_policy)
    run_rollin(params.rollin, params.seed)
    run_rollout(params.rollout, params.seed)
    rollins = _sorted(params.rollin.output_dir)
    rollouts = _sorted(params.rollout.output_dir)
    lengths = dict(zip(rollins["rollin_id"], rollins["token_ids"].list.len(), strict=True))
    expected = sum(min(2, max(n - 1, 0)) * 2 for n in lengths.values())
    assert rollouts.height == expected
    assert rollouts["rollout_id"].n_unique() == rollouts.height
    joined = rollouts.with_columns(
        pl.col("rollin_id").replace_strict(lengths).alias("rollin_tokens")
    )
    assert (joined["cut_position"] >= 1).all()
    assert (joined["cut_position"] < joined["rollin_tokens"]).all()
    assert (joined["cut_position"] + joined["token_ids"].list.len() <= CAP).all()
    rollout_shards = set(TableReader(params.rollout.output_dir).shard_names)
    rollin_shards = set(TableReader(params.rollin.output_dir).shard_names)
    assert {name.rsplit("-", 1)[0] for name in rollout_shards} == rollin_shards  # one file each
    metadata = TableReader(params.rollout.output_dir).metadata
    assert (
        metadata["tokenizer_hash"]
        == TableReader(params.rollin.output_dir).metadata["tokenizer_hash"]
    )


def test_rollout_refuses_a_policy_with_another_tokenizer(
    tmp_path, problems_dir, tiny_policy, tiny_model_dir
):
    params = make_params(tmp_path, problems_dir, tiny_policy)
    run_rollin(params.rollin, params.seed)
    other_dir = tmp_path / "other-policy"
    other_dir.mkdir()
    for path in tiny_model_dir.iterdir():
        (other_dir / path.name).write_bytes(path.read_bytes())
    vocab_file = other_dir / "tokenizer.json"
    vocab_file.write_text(vocab_file.read_text().replace('"<unk>"', '"<UNK>"'))
    policy = tiny_policy.model_copy(update={"model": str(other_dir)})
    rollout = params.rollout.model_copy(update={"policy": policy})
    with pytest.raises(ConfigError, match="tokenizer hash"):
        run_rollout(rollout, params.seed)


def test_cli_rollin_and_rollout_write_tables_and_metrics(tmp_path, problems_dir, tiny_policy):
    import json

    import yaml
    from typer.testing import CliRunner

    from tracefactory.cli import app

    params = make_params(tmp_path, problems_dir, tiny_policy)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    runner = CliRunner()
    for stage in ("rollin", "rollout"):
        reports = tmp_path / "reports" / stage
        args = [stage, "--params", str(params_file), "--reports", str(reports)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        metrics = json.loads((reports / "metrics.json").read_text())
        assert metrics["rows"] == metrics["samples"] > 0
        assert 0 <= metrics["length_capped_fraction"] <= 1
