"""Fault injection on real tables: two writers, a replaced input, a failed or respelled rerun, a
truncated or damaged shard. Each case once gave a wrong result with exit code 0 or deleted
finished work."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from pipeline_tables import TableSpec, dataset_config, label_config, labelled_run

from tracefactory.errors import (
    ConfigError,
    ShardError,
    StageInputError,
    TableLockedError,
    TracefactoryError,
)
from tracefactory.grading.config import VerifyConfig
from tracefactory.grading.stage import VerifyStage
from tracefactory.integrity import TableLock
from tracefactory.io import MANIFEST_NAME, ShardWriter, TableReader
from tracefactory.labels.stage import LabelStage
from tracefactory.models import SHIPPED_MODELS, model_fingerprint
from tracefactory.problems.config import (
    BenchmarkConfig,
    DecontaminationConfig,
    ProblemsConfig,
    SourceConfig,
)
from tracefactory.problems.stage import ProblemsStage
from tracefactory.stage import run_stage

META = {"producer": "problems", "params_hash": "h1"}


@pytest.fixture(autouse=True)
def _private_checksum_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEFACTORY_CACHE", str(tmp_path / "cache"))


def _problems(start: int, count: int, answer: str = "1") -> list[dict]:
    return [
        {
            "problem_id": f"p{i}",
            "source": "s",
            "problem": f"q{i}",
            "answer": answer,
            "split": "train",
        }
        for i in range(start, start + count)
    ]


def _finished(directory, shards: int = 2, meta: dict = META, answer: str = "1"):
    writer = ShardWriter(directory, "problems", meta)
    for i in range(shards):
        writer.write(f"shard-{i:05d}", _problems(2 * i, 2, answer))
    writer.finalize()
    return directory


def _snapshot(directory) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def _flip_byte(path, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)
        f.seek(position)
        f.write(bytes([byte[0] ^ 0xFF]))


# One writer per table.


def test_a_second_writer_fails_at_once_naming_the_table_and_the_running_process(tmp_path):
    table = tmp_path / "labels"
    script = (
        "import sys, tracefactory.io as tio\n"
        f"writer = tio.ShardWriter({str(table)!r}, 'problems', {META!r})\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        expected = rf"{re.escape(str(table))} is being written by another run \(pid {holder.pid} on"
        with pytest.raises(TableLockedError, match=expected):
            ShardWriter(table, "problems", {**META, "params_hash": "other params"})
    finally:
        holder.kill()
        holder.wait()
    ShardWriter(table, "problems", META).close()  # a killed holder leaves the table free


def test_the_lock_lives_beside_the_table_not_in_it(tmp_path):
    before = _snapshot(_finished(tmp_path / "problems"))
    writer = ShardWriter(tmp_path / "problems", "problems", META)
    assert _snapshot(tmp_path / "problems") == before  # DVC hashes the folder: no lock inside
    writer.close()


# Inputs are fingerprinted, not just params.


def _write_jsonl(path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _local_problems_config(tmp_path, source, benchmarks=()) -> ProblemsConfig:
    return ProblemsConfig(
        output_dir=str(tmp_path / "problems"),
        sources=[SourceConfig(name="local", path=str(source))],
        decontamination=DecontaminationConfig(
            ngram=4, benchmarks=[BenchmarkConfig(name="bench", path=str(b)) for b in benchmarks]
        ),
    )


def _problem_texts(directory) -> list[str]:
    return sorted(TableReader(directory).read().column("problem").to_pylist())


def test_a_replaced_local_source_file_replaces_the_problems_table(tmp_path):
    source = tmp_path / "source.jsonl"
    _write_jsonl(source, [{"problem": "What is 2 plus 3?", "answer": "5"}])
    config = _local_problems_config(tmp_path, source)
    run_stage(ProblemsStage(config, 0), config.output_dir)
    _write_jsonl(source, [{"problem": "What is 4 plus 4?", "answer": "8"}])
    summary = run_stage(ProblemsStage(config, 0), config.output_dir)
    assert summary.shards_skipped == 0
    assert _problem_texts(config.output_dir) == ["What is 4 plus 4?"]


def test_a_replaced_benchmark_file_replaces_the_problems_table(tmp_path):
    source, bench = tmp_path / "source.jsonl", tmp_path / "bench.jsonl"
    problem = "Find the sum of the first ten odd numbers."
    _write_jsonl(source, [{"problem": problem, "answer": "100"}])
    _write_jsonl(bench, [{"problem": problem, "answer": "100"}])
    config = _local_problems_config(tmp_path, source, [bench])
    run_stage(ProblemsStage(config, 0), config.output_dir)
    assert _problem_texts(config.output_dir) == []  # contaminated
    _write_jsonl(bench, [{"problem": "An unrelated benchmark question here.", "answer": "1"}])
    run_stage(ProblemsStage(config, 0), config.output_dir)
    assert _problem_texts(config.output_dir) == [problem]


def test_model_fingerprint_reads_every_weight_byte_and_not_the_location(tmp_path):
    policy = shutil.copytree(SHIPPED_MODELS["tiny"], tmp_path / "policy")
    moved = shutil.copytree(policy, tmp_path / "elsewhere" / "policy")
    original = model_fingerprint(str(policy))
    assert model_fingerprint(str(moved)) == original
    assert model_fingerprint(str(policy) + "/") == original  # respelled
    weights = policy / "model.safetensors"
    assert weights.stat().st_size > 2 << 20  # the change below lies past the first MiB
    _flip_byte(weights, weights.stat().st_size - 1)
    assert model_fingerprint(str(policy)) != original


def test_table_fingerprint_follows_content_at_equal_size(tmp_path):
    one = _finished(tmp_path / "one", answer="1")
    two = _finished(tmp_path / "two", answer="2")
    assert [p.stat().st_size for p in sorted(one.glob("*.parquet"))] == [
        p.stat().st_size for p in sorted(two.glob("*.parquet"))
    ]
    assert TableReader(one).fingerprint != TableReader(two).fingerprint


# A failed or changed run never deletes finished work before it has something better.


def test_a_failed_start_deletes_nothing(tmp_path):
    source = tmp_path / "source.jsonl"
    _write_jsonl(source, [{"problem": "What is 2 plus 3?", "answer": "5"}])
    config = _local_problems_config(tmp_path, source)
    run_stage(ProblemsStage(config, 0), config.output_dir)
    before = _snapshot(tmp_path / "problems")
    broken = _local_problems_config(tmp_path, tmp_path / "missing.jsonl")  # other params, too
    with pytest.raises(TracefactoryError, match="missing.jsonl"):
        run_stage(ProblemsStage(broken, 0), broken.output_dir)
    assert _snapshot(tmp_path / "problems") == before
    assert _problem_texts(config.output_dir) == ["What is 2 plus 3?"]


def test_stale_shards_and_manifest_stay_until_the_first_new_shard(tmp_path):
    table = _finished(tmp_path / "problems", shards=2)
    rerun = ShardWriter(table, "problems", {**META, "params_hash": "h2"})
    assert rerun.completed() == set()
    assert TableReader(table).num_rows == 4  # still the whole old table
    rerun.write("shard-00000", _problems(10, 1))
    assert not (table / MANIFEST_NAME).exists()
    assert sorted(p.name for p in table.glob("*.parquet")) == ["shard-00000.parquet"]
    rerun.finalize()
    assert TableReader(table).num_rows == 1


def test_the_same_folders_spelled_differently_keep_finished_labels(tmp_path, monkeypatch):
    root = labelled_run(tmp_path / "run", TableSpec(problems=4))
    before = _snapshot(root / "labels")
    monkeypatch.chdir(tmp_path)
    respelled = label_config(tmp_path / "." / "run").model_copy(
        update={"problems_dir": "./run/problems", "output_dir": "run/./labels"}
    )
    summary = run_stage(LabelStage(respelled), respelled.output_dir)
    assert summary.shards_skipped == summary.shards_planned
    assert _snapshot(root / "labels") == before


# Corruption is detected where it happens.


def test_a_truncated_input_shard_fails_naming_it_and_leaves_the_output_untouched(tmp_path):
    root = labelled_run(tmp_path, TableSpec(problems=4))
    labels = _snapshot(root / "labels")
    shard = root / "rollouts" / "part-1.parquet"
    size = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[: size // 2])
    message = rf"{re.escape(str(shard))}: {size // 2} bytes, the manifest says {size} .*rerun"
    with pytest.raises(StageInputError, match=message):
        config = label_config(root)
        run_stage(LabelStage(config), config.output_dir)
    assert _snapshot(root / "labels") == labels
    with pytest.raises(StageInputError, match=message):
        paths = {f"{t}_dir": str(root / t) for t in ("problems", "rollins", "rollouts")}
        VerifyStage(VerifyConfig(**paths, output_dir=str(root / "verdicts2"), use_ray=False))


def test_a_damaged_shard_of_the_right_size_fails_when_read(tmp_path):
    table = _finished(tmp_path / "problems")
    shard = table / "shard-00001.parquet"
    _flip_byte(shard, shard.stat().st_size // 2)
    reader = TableReader(table)  # sizes agree: opening stays cheap
    reader.scan_shard("shard-00000").collect()
    with pytest.raises(StageInputError, match=rf"{re.escape(str(shard))}: content checksum"):
        reader.scan_shard("shard-00001")
    with pytest.raises(StageInputError, match="rerun the 'problems' stage"):
        TableReader(table).scan()


def test_a_damaged_finished_shard_is_never_blessed_into_a_new_manifest(tmp_path):
    table = _finished(tmp_path / "problems")
    _flip_byte(table / "shard-00000.parquet", 200)
    rerun = ShardWriter(table, "problems", META)
    with pytest.raises(ShardError, match="shard-00000.parquet: changed since"):
        rerun.finalize(expected={"shard-00000", "shard-00001"})


def test_the_manifest_records_each_shard_size_and_checksum(tmp_path):
    from tracefactory.integrity import file_checksum

    table = _finished(tmp_path / "problems", shards=1)
    manifest = json.loads((table / MANIFEST_NAME).read_text())
    shard = table / "shard-00000.parquet"
    assert manifest["shards"][0]["bytes"] == shard.stat().st_size
    assert manifest["shards"][0]["checksum"] == file_checksum(shard)


def test_a_damaged_shard_stays_refused_after_a_resumed_run_that_never_finished(tmp_path):
    table = _finished(tmp_path / "problems", shards=3)
    (table / "shard-00002.parquet").unlink()
    _flip_byte(table / "shard-00000.parquet", 200)
    with ShardWriter(table, "problems", META) as killed:  # resumes, then stops before finalize
        killed.write("shard-00002", _problems(4, 2))
    assert not (table / MANIFEST_NAME).exists()
    rerun = ShardWriter(table, "problems", META)
    assert rerun.completed() == {"shard-00000", "shard-00001", "shard-00002"}
    with pytest.raises(ShardError, match="shard-00000.parquet: changed since"):
        rerun.finalize()


def test_a_shard_without_a_recorded_checksum_is_redone_not_resumed(tmp_path):
    table = _finished(tmp_path / "problems", shards=2)
    stray = _finished(tmp_path / "stray", shards=3) / "shard-00002.parquet"
    shutil.copy(stray, table / "shard-00002.parquet")  # right params in its footer, no record
    (table / MANIFEST_NAME).unlink()
    with ShardWriter(table, "problems", META) as rerun:
        assert rerun.completed() == set()


def test_a_manifest_that_lost_an_entry_is_refused(tmp_path):
    table = _finished(tmp_path / "problems", shards=3)
    manifest = json.loads((table / MANIFEST_NAME).read_text())
    manifest["shards"].pop(1)
    (table / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(StageInputError, match="says 6 rows but its shards hold 4"):
        TableReader(table)
    manifest["rows"] = 4  # a consistent total: the shard still in the folder gives it away
    (table / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(StageInputError, match=r"\['shard-00001.parquet'\] are in the folder"):
        TableReader(table)


def test_a_manifest_shard_name_outside_the_table_is_refused(tmp_path):
    table = _finished(tmp_path / "problems", shards=1)
    manifest = json.loads((table / MANIFEST_NAME).read_text())
    manifest["shards"][0]["name"] = "../../x"
    (table / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(StageInputError, match=r"invalid shard name '\.\./\.\./x'"):
        TableReader(table)


def test_a_shard_replaced_after_it_was_checked_is_caught_when_read_again(tmp_path):
    table = _finished(tmp_path / "problems", answer="1")
    other = _finished(tmp_path / "other", answer="2")
    reader = TableReader(table)
    reader.scan_shard("shard-00000").collect()  # checked, e.g. while the stage plans
    shard = table / "shard-00000.parquet"
    shutil.copy(other / "shard-00000.parquet", shard)  # same size, other answers
    with pytest.raises(StageInputError, match=rf"{re.escape(str(shard))}: content checksum"):
        reader.scan_shard("shard-00000")


def test_a_resume_under_other_package_versions_redoes_the_table(tmp_path, monkeypatch):
    from tracefactory import tablewriter

    table = _finished(tmp_path / "problems", shards=2)
    upgraded = json.dumps({**json.loads(tablewriter.package_versions()), "torch": "99.0"})
    monkeypatch.setattr(tablewriter, "package_versions", lambda: upgraded)
    with ShardWriter(table, "problems", META) as rerun:
        assert rerun.completed() == set()


def test_file_checksum_rehashes_a_file_changed_in_place(tmp_path):
    from tracefactory.integrity import file_checksum

    path = tmp_path / "weights.bin"
    path.write_bytes(bytes(4096))
    before = file_checksum(path)
    assert file_checksum(path) == before
    _flip_byte(path, 100)
    assert file_checksum(path) != before


# Published folders (the dataset, the value model) carry a checksum record their loaders check.


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return labelled_run(tmp_path_factory.mktemp("run"), TableSpec(problems=12))


def test_a_flipped_byte_in_the_exported_dataset_is_refused_before_training(labelled, tmp_path):
    from tracefactory.dataset.export import export_dataset
    from tracefactory.valuemodel.loading import data_files

    config = dataset_config(labelled, output_dir=str(tmp_path / "dataset"))
    export_dataset(config)
    folder = tmp_path / "dataset"
    assert len(data_files(folder, "default")) >= 1
    damaged = sorted((folder / "default").glob("*.parquet"))[0]
    _flip_byte(damaged, damaged.stat().st_size // 2)
    with pytest.raises(StageInputError, match=rf"{re.escape(str(damaged))}: content checksum"):
        data_files(folder, "default")


def test_value_model_weights_are_checked_when_loaded(tmp_path):
    from tracefactory.integrity import record_folder
    from tracefactory.models import MODEL_FILE_SUFFIXES
    from tracefactory.valuemodel.model import ValueModel

    folder = ValueModel.from_policy(SHIPPED_MODELS["tiny"]).save_pretrained(tmp_path / "value")
    record_folder(folder, MODEL_FILE_SUFFIXES)
    ValueModel.from_pretrained(folder)
    weights = folder / "model.safetensors"
    _flip_byte(weights, weights.stat().st_size - 1)
    with pytest.raises(StageInputError, match="model.safetensors: content checksum"):
        ValueModel.from_pretrained(folder)


def test_export_refuses_to_delete_a_folder_it_did_not_write(labelled, tmp_path):
    from tracefactory.dataset.export import export_dataset

    other = tmp_path / "data"
    (other / "labels").mkdir(parents=True)
    (other / "labels" / "kept.parquet").write_bytes(b"finished work")
    config = dataset_config(labelled, output_dir=str(other))
    with pytest.raises(ConfigError, match=r"dataset.output_dir=.*data holds files this command"):
        export_dataset(config)
    assert (other / "labels" / "kept.parquet").read_bytes() == b"finished work"


def test_export_never_writes_through_a_symlinked_staging_folder(labelled, tmp_path):
    from tracefactory.dataset.export import export_dataset

    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "dataset.incomplete").symlink_to(outside)
    export_dataset(dataset_config(labelled, output_dir=str(tmp_path / "dataset")))
    assert list(outside.iterdir()) == []
    assert (tmp_path / "dataset" / "default").is_dir()


def test_a_second_export_of_the_same_folder_fails_at_once(labelled, tmp_path):
    from tracefactory.dataset.export import export_dataset

    with TableLock(tmp_path / "dataset"):  # another `tracefactory dataset` is running
        with pytest.raises(TableLockedError, match="is being written by another run"):
            export_dataset(dataset_config(labelled, output_dir=str(tmp_path / "dataset")))
    assert not (tmp_path / "dataset").exists()


def test_a_stage_whose_output_is_its_own_input_refuses_and_deletes_nothing(tmp_path):
    root = labelled_run(tmp_path, TableSpec(problems=4))
    rollouts = _snapshot(root / "rollouts")
    config = label_config(root).model_copy(update={"output_dir": str(root / "rollouts")})
    with pytest.raises(ConfigError, match=r"rollouts holds the 'rollouts' table; writing the"):
        run_stage(LabelStage(config), config.output_dir)
    assert _snapshot(root / "rollouts") == rollouts


# Where an input lives is not what it is; what it holds is.


def test_the_same_policy_at_another_path_keeps_the_rollins_params_hash(labelled, tmp_path):
    from tracefactory.generation.config import PolicyConfig, RollinConfig
    from tracefactory.generation.rollin import RollinStage

    moved = shutil.copytree(SHIPPED_MODELS["tiny"], tmp_path / "elsewhere" / "tiny")

    def params_hash_with(model) -> str:
        config = RollinConfig(
            problems_dir=str(labelled / "problems"),
            policies=[PolicyConfig(model=str(model))],
            use_ray=False,
        )
        return RollinStage(config, 0).metadata()["params_hash"]

    assert params_hash_with(moved) == params_hash_with(SHIPPED_MODELS["tiny"])
    _flip_byte(moved / "model.safetensors", 4000)
    assert params_hash_with(moved) != params_hash_with(SHIPPED_MODELS["tiny"])


def test_evaluation_samples_follow_benchmark_files_and_value_settings(tmp_path):
    from tracefactory.search.config import EvaluateConfig
    from tracefactory.search.stage import EvaluateStage

    bench = tmp_path / "bench.jsonl"
    _write_jsonl(bench, [{"problem": "What is 1 plus 1?", "answer": "2"}])

    def params_hash_with(**fields) -> str:
        config = EvaluateConfig(
            value_model=str(SHIPPED_MODELS["tiny"]),
            policy={"model": str(SHIPPED_MODELS["tiny"])},
            benchmarks=[BenchmarkConfig(name="local", path=str(bench))],
            **fields,
        )
        return EvaluateStage(config, 0).metadata()["params_hash"]

    first = params_hash_with()
    assert params_hash_with(value_batch_tokens=128) != first
    assert params_hash_with(value_cache_tokens=1024) != first
    _write_jsonl(bench, [{"problem": "What is 2 plus 2?", "answer": "4"}])
    assert params_hash_with() != first


def test_a_tokenizer_changed_at_its_recorded_path_is_refused(tmp_path):
    from transformers import PreTrainedTokenizerFast

    from tracefactory.models import tokenizer_hash

    policy = shutil.copytree(SHIPPED_MODELS["tiny"], tmp_path / "policy")
    recorded = tokenizer_hash(PreTrainedTokenizerFast.from_pretrained(policy))
    meta = {**META, "tokenizer": str(policy), "tokenizer_hash": recorded}
    table = _finished(tmp_path / "problems", meta=meta)
    spec = json.loads((policy / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    vocab["\n"], vocab[" "] = vocab[" "], vocab["\n"]  # two ids swapped
    (policy / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(StageInputError, match=r"tokenizer now at .*policy' has hash"):
        TableReader(table).tokenizer()


def test_a_value_model_missing_its_backbone_weights_is_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    from tracefactory.valuemodel.model import ValueModel

    folder = ValueModel.from_policy(SHIPPED_MODELS["tiny"]).save_pretrained(tmp_path / "value")
    tensors = load_file(folder / "model.safetensors")
    save_file(
        {k: v for k, v in tensors.items() if k.startswith("score.")}, folder / "model.safetensors"
    )
    with pytest.raises(ConfigError, match=r"value: its weights lack \d+ backbone tensor"):
        ValueModel.from_pretrained(folder)


def test_an_unreachable_ray_address_fails_at_once_naming_the_key():
    from tracefactory.config import RayConfig
    from tracefactory.ray_cluster import init_ray

    with pytest.raises(ConfigError, match=r"ray.address='127.0.0.1:1': no Ray head reachable"):
        init_ray(RayConfig(address="127.0.0.1:1"))


# Hangs become one line at load.


def test_absurd_sizes_and_alias_bombs_are_refused_when_params_load(tmp_path):
    from tracefactory.params import load_params

    params = tmp_path / "params.yaml"
    params.write_text("rollin:\n  samples_per_problem: 4\n")
    with pytest.raises(ConfigError, match="rollin.samples_per_problem"):
        load_params(params, ["rollin.samples_per_problem=1000000000"])
    with pytest.raises(ConfigError, match=r"evaluate.budgets\[1\]"):
        load_params(params, ["evaluate.budgets=[4, 1000000000]"])
    with pytest.raises(ConfigError, match="evaluate.search_seeds"):
        load_params(params, ["evaluate.search_seeds=1000000000"])
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]  # each line refers to the one above 8 times
    names = "abcdefghi"
    bomb += [
        f"{n}: &{n} [{', '.join([f'*{p}'] * 8)}]"
        for p, n in zip(names[:-1], names[1:], strict=True)
    ]
    params.write_text("\n".join(bomb) + "\n")
    with pytest.raises(ConfigError, match=r"params.yaml is not valid YAML: line 2: YAML aliases"):
        load_params(params)


# Generation provenance.


def test_generation_tables_record_their_engine_and_the_card_names_it(labelled, tmp_path):
    import hashlib
    from importlib.metadata import version

    from tracefactory.dataset.provenance import generation_engines
    from tracefactory.generation.config import PolicyConfig, RollinConfig
    from tracefactory.generation.rollin import RollinStage
    from tracefactory.generation.templates import TINY_TEMPLATE

    config = RollinConfig(
        problems_dir=str(labelled / "problems"), policies=[PolicyConfig()], use_ray=False
    )
    metadata = RollinStage(config, 0).metadata()
    [engine] = json.loads(metadata["generation"])
    assert engine["backend"] == "transformers"
    assert engine["backend_version"] == version("transformers")
    assert engine["model_fingerprint"] == model_fingerprint("tracefactory:tiny")
    assert engine["template_sha256"] == hashlib.sha256(TINY_TEMPLATE.encode()).hexdigest()[:16]
    table = _finished(tmp_path / "rollins", meta={**META, "generation": metadata["generation"]})
    [line] = generation_engines([str(table)])
    assert f"transformers {version('transformers')}" in line
    assert engine["model_fingerprint"] in line


# Bad files and ids get one line that names them.


def test_a_truncated_or_unparsable_value_model_gets_one_line(tmp_path):
    from tracefactory.valuemodel.model import ValueModel

    folder = ValueModel.from_policy(SHIPPED_MODELS["tiny"]).save_pretrained(tmp_path / "value")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ConfigError, match=r"value: its weights cannot be loaded .* copy or"):
        ValueModel.from_pretrained(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"config.json is not JSON"):
        ValueModel.from_pretrained(folder)


def test_a_hub_repo_id_that_is_a_path_is_refused_at_load():
    from pydantic import ValidationError

    from tracefactory.dataset.config import PublishConfig

    assert PublishConfig(repo_id="org/name.v2").repo_id == "org/name.v2"
    for bad in ("../../etc/passwd", "org/..", "https://huggingface.co/org/name"):
        with pytest.raises(ValidationError, match="repo_id"):
            PublishConfig(repo_id=bad)


def test_a_finished_model_whose_weights_changed_is_trained_again(tmp_path):
    from tracefactory.integrity import record_folder
    from tracefactory.models import MODEL_FILE_SUFFIXES
    from tracefactory.valuemodel.checkpoint import finished_run
    from tracefactory.valuemodel.config import TrainConfig

    cfg = TrainConfig(out_dir=str(tmp_path / "model"), reports_dir=str(tmp_path / "reports"))
    identity = {"params": {}, "seed": 0, "data": "d", "init": "i"}
    model = shutil.copytree(SHIPPED_MODELS["tiny"], tmp_path / "model")
    (model / "training_config.json").write_text(json.dumps({"run": identity}))
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "metrics.json").write_text('{"accuracy": 1.0}')
    record_folder(model, MODEL_FILE_SUFFIXES)
    assert finished_run(cfg, identity) == {"accuracy": 1.0}  # nothing to do
    _flip_byte(model / "model.safetensors", 4000)  # e.g. an embedding zeroed by hand
    assert finished_run(cfg, identity) is None


def test_a_missing_local_policy_path_is_named_by_its_key_not_as_a_hub_id(labelled, tmp_path):
    from tracefactory.errors import ConfigError
    from tracefactory.generation.config import PolicyConfig, RollinConfig, RolloutConfig
    from tracefactory.generation.rollin import RollinStage
    from tracefactory.generation.rollout import RolloutStage

    missing = str(tmp_path / "checkpoints" / "policy")
    rollin = RollinConfig(
        problems_dir=str(labelled / "problems"),
        policies=[PolicyConfig(), PolicyConfig(name="mine", model=missing)],
        use_ray=False,
    )
    with pytest.raises(ConfigError, match=r"rollin\.policies\[1\]\.model .*no such model folder"):
        RollinStage(rollin, 0).metadata()
    rollout = RolloutConfig(
        rollins_dir=str(labelled / "rollins"), policy=PolicyConfig(model=missing), use_ray=False
    )
    with pytest.raises(ConfigError, match=r"rollout\.policy\.model .*no such model folder"):
        RolloutStage(rollout, 0).metadata()
