"""The verify stage on traces built from real reasoning-model responses (the shared benchmarks)."""

import json
from pathlib import Path

import polars as pl
import pytest
from locations import BENCHMARKS, needs_shared_file

from tracefactory.config import RayConfig
from tracefactory.grading import Grader, GraderConfig
from tracefactory.grading.config import VerifyConfig
from tracefactory.grading.stage import VerifyStage
from tracefactory.io import ShardWriter, TableReader
from tracefactory.stage import run_stage

REAL_OUTPUTS = BENCHMARKS / "real_outputs.jsonl"
pytestmark = needs_shared_file(REAL_OUTPUTS)


@pytest.fixture(scope="module")
def byte_tokenizer(tmp_path_factory) -> str:
    """A byte-level BPE tokenizer trained offline, saved as a Hugging Face folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rows = [json.loads(line) for line in REAL_OUTPUTS.read_text().splitlines()]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=800,
        special_tokens=["<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator((r["response"] for r in rows), trainer)
    folder = tmp_path_factory.mktemp("tokenizer")
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<eos>").save_pretrained(folder)
    return str(folder)


def _write(path: Path, schema: str, rows: list[dict], tokenizer: str, shard_size: int = 40):
    meta = {"producer": "test", "params_hash": "t", "tokenizer": tokenizer, "tokenizer_hash": "h"}
    writer = ShardWriter(path, schema, meta)
    for start in range(0, len(rows), shard_size):
        writer.write(f"shard-{start // shard_size:05d}", rows[start : start + shard_size])
    writer.finalize()


@pytest.fixture(scope="module")
def traces(tmp_path_factory, byte_tokenizer):
    """Problems, roll-ins (whole responses) and roll-outs (each response cut at a third and
    continued with its own rest), so a roll-out's graded text is exactly its roll-in's."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(byte_tokenizer)
    rows = [json.loads(line) for line in REAL_OUTPUTS.read_text().splitlines()][:80]
    root = tmp_path_factory.mktemp("data")
    problems, rollins, rollouts = [], [], []
    for i, row in enumerate(rows):
        ids = tokenizer(row["response"], add_special_tokens=False)["input_ids"]
        cut = len(ids) // 3
        problems.append(
            {
                "problem_id": f"p{i}",
                "source": row["source"],
                "problem": row["problem"],
                "answer": row["gold"],
                "split": "train",
            }
        )
        rollins.append(
            {
                "rollin_id": f"r{i}",
                "problem_id": f"p{i}",
                "policy": row["model"],
                "sample_index": 0,
                "seed": i,
                "prompt_ids": [],
                "token_ids": ids,
                "finish_reason": "stop",
            }
        )
        rollouts.append(
            {
                "rollout_id": f"o{i}",
                "rollin_id": f"r{i}",
                "problem_id": f"p{i}",
                "policy": "x",
                "cut_index": 0,
                "cut_position": cut,
                "sample_index": 0,
                "seed": i,
                "token_ids": ids[cut:],
                "finish_reason": "stop",
            }
        )
    _write(root / "problems", "problems", problems, byte_tokenizer)
    _write(root / "rollins", "rollins", rollins, byte_tokenizer)
    _write(root / "rollouts", "rollouts", rollouts, byte_tokenizer)
    return root, rows


def _config(root: Path) -> VerifyConfig:
    return VerifyConfig(
        problems_dir=str(root / "problems"),
        rollins_dir=str(root / "rollins"),
        rollouts_dir=str(root / "rollouts"),
        output_dir=str(root / "verdicts"),
        grader=GraderConfig(workers=2, thinking="auto"),
    )


def _expected(rows: list[dict]) -> list[dict]:
    with Grader(GraderConfig(workers=2, thinking="auto")) as grader:
        verdicts = grader.grade_many([(r["response"], r["gold"]) for r in rows])
    return [v.to_dict() for v in verdicts]


def _assert_verdicts_match(verdict_dir: Path, rows: list[dict]) -> pl.DataFrame:
    verdicts = TableReader(verdict_dir).scan().collect()
    assert verdicts.height == 2 * len(rows)
    expected = _expected(rows)
    for table in ("rollins", "rollouts"):
        got = (
            verdicts.filter(pl.col("trace_table") == table)
            .with_columns(pl.col("trace_id").str.slice(1).cast(pl.Int64).alias("i"))
            .sort("i")
            .select("label", "reason", "answer")
            .to_dicts()
        )
        assert got == expected, table
    return verdicts


def test_verdicts_match_grading_the_responses_directly(traces):
    root, rows = traces
    summary = run_stage(VerifyStage(_config(root)), root / "verdicts")
    verdicts = _assert_verdicts_match(root / "verdicts", rows)
    assert set(verdicts["reason"]) >= {"match", "mismatch", "no_think_end"}
    assert sum(summary.stats[k] for k in summary.stats if k.startswith("reason_")) == len(verdicts)


@pytest.mark.integration
def test_verify_on_ray_actors_gives_the_same_verdicts(traces, tmp_path, monkeypatch):
    import ray

    root, rows = traces
    config = _config(root).model_copy(update={"output_dir": str(tmp_path / "verdicts")})
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    try:
        run_stage(VerifyStage(config), config.output_dir, RayConfig(num_cpus=2))
    finally:
        ray.shutdown()
    _assert_verdicts_match(tmp_path / "verdicts", rows)
