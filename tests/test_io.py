import json
import re
import subprocess
import sys
import textwrap
import threading

import polars as pl
import pytest

from tracefactory import tablewriter
from tracefactory.errors import SchemaError, ShardError, StageInputError
from tracefactory.integrity import file_checksum
from tracefactory.io import MANIFEST_NAME, ShardWriter, TableReader

META = {"producer": "test", "params_hash": "h1"}


def _problems(start: int, count: int) -> list[dict]:
    return [
        {
            "problem_id": f"p{i}",
            "source": "s",
            "problem": f"q{i}",
            "answer": str(i),
            "split": "train",
        }
        for i in range(start, start + count)
    ]


def test_written_table_reads_back_through_manifest(tmp_path):
    writer = ShardWriter(tmp_path / "problems", "problems", META)
    writer.write("shard-00000", _problems(0, 3))
    writer.write("shard-00001", pl.DataFrame(_problems(3, 2)))
    manifest = writer.finalize(expected={"shard-00000", "shard-00001"})
    assert manifest.rows == 5
    reader = TableReader(tmp_path / "problems")
    assert reader.num_rows == 5
    assert reader.metadata["producer"] == "test"
    assert reader.metadata["schema_version"] == "1"
    assert "pyarrow" in json.loads(reader.metadata["package_versions"])
    frame = reader.scan().filter(pl.col("answer") == "4").collect()
    assert frame["problem_id"].to_list() == ["p4"]
    assert sum(b.num_rows for b in reader.iter_batches(columns=["problem_id"], batch_size=2)) == 5


def test_invalid_rows_are_rejected_naming_the_column(tmp_path):
    writer = ShardWriter(tmp_path / "problems", "problems", META)
    rows = _problems(0, 1)
    rows[0]["split"] = "holdout"
    with pytest.raises(SchemaError, match="column 'split': value 'holdout'"):
        writer.write("shard-00000", pl.DataFrame(rows))
    assert writer.completed() == set()


def test_missing_metadata_is_rejected(tmp_path):
    with pytest.raises(SchemaError, match=r"metadata lacks \['tokenizer', 'tokenizer_hash'\]"):
        ShardWriter(tmp_path / "rollins", "rollins", META)


def test_a_shard_is_never_written_twice(tmp_path):
    writer = ShardWriter(tmp_path / "problems", "problems", META)
    writer.write("shard-00000", _problems(0, 1))
    with pytest.raises(ShardError, match="already complete"):
        writer.write("shard-00000", _problems(0, 1))


def test_completed_lists_finished_shards_for_resume(tmp_path):
    first = ShardWriter(tmp_path / "problems", "problems", META)
    first.write("shard-00000", _problems(0, 2))
    first.close()  # the run ends without finalizing (interrupted)
    second = ShardWriter(tmp_path / "problems", "problems", META)  # a rerun
    assert second.completed() == {"shard-00000"}
    with pytest.raises(ShardError, match="1 shard"):
        second.finalize(expected={"shard-00000", "shard-00001"})


def test_shards_from_other_params_are_not_resumed(tmp_path):
    ShardWriter(tmp_path / "problems", "problems", META).write("shard-00000", _problems(0, 2))
    rerun = ShardWriter(tmp_path / "problems", "problems", {**META, "params_hash": "h2"})
    assert rerun.completed() == set()


def test_duplicate_keys_across_shards_fail_finalize(tmp_path):
    writer = ShardWriter(tmp_path / "problems", "problems", META)
    writer.write("a", _problems(0, 2))
    writer.write("b", _problems(1, 2))
    with pytest.raises(ShardError, match=r"key 'problem_id' is not unique, e.g. \['p1'\]"):
        writer.finalize()


def test_reader_refuses_a_table_without_manifest(tmp_path):
    writer = ShardWriter(tmp_path / "problems", "problems", META)
    writer.write("shard-00000", _problems(0, 1))
    with pytest.raises(StageInputError, match="has no manifest"):
        TableReader(tmp_path / "problems")
    with pytest.raises(StageInputError, match="does not exist"):
        TableReader(tmp_path / "nothing")


def test_crash_between_temp_write_and_rename_leaves_no_listed_shard(tmp_path):
    """A writer killed (SIGKILL) after writing its temp file, before the rename, leaves nothing a
    reader or a resumed writer would trust, and the next writer cleans the leftover up."""
    table_dir = tmp_path / "problems"
    script = textwrap.dedent(
        f"""
        import os, signal
        import tracefactory.io as tio
        writer = tio.ShardWriter({str(table_dir)!r}, "problems", {META!r})
        writer.write("shard-00000", {_problems(0, 2)!r})
        os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)  # the rename
        writer.write("shard-00001", {_problems(2, 2)!r})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == -9, result.stderr.decode()
    leftovers = [p.name for p in table_dir.iterdir()]
    assert any(name.startswith(".tmp-shard-00001") for name in leftovers)
    assert MANIFEST_NAME not in leftovers
    resumed = ShardWriter(table_dir, "problems", META)
    assert resumed.completed() == {"shard-00000"}
    assert not any(p.name.startswith(".tmp-") for p in table_dir.iterdir())
    resumed.write("shard-00001", _problems(2, 2))
    resumed.finalize(expected={"shard-00000", "shard-00001"})
    assert TableReader(table_dir).num_rows == 4


def test_fingerprint_follows_content_not_finalize_time(tmp_path):
    def build(directory, rows):
        writer = ShardWriter(directory, "problems", META)
        writer.write("shard-00000", rows)
        writer.finalize()
        return TableReader(directory).fingerprint

    a = build(tmp_path / "a", _problems(0, 2))
    assert build(tmp_path / "b", _problems(0, 2)) == a
    assert build(tmp_path / "c", _problems(0, 3)) != a


def test_the_same_rows_give_byte_identical_tables(tmp_path):
    """No timestamps or random names in what stays on disk: DVC sees an unchanged output as
    unchanged, and a rerun does not invalidate everything downstream."""

    def build(directory):
        writer = ShardWriter(directory, "problems", META)
        writer.write("shard-00000", _problems(0, 3), counts={"rows": 3})
        writer.finalize()
        return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}

    assert build(tmp_path / "a") == build(tmp_path / "b")


def test_submit_returns_while_the_shard_is_stored_and_finalize_waits_for_it(tmp_path, monkeypatch):
    """The caller produces the next shard while this one is encoded and stored; the manifest
    records the checksum of exactly the bytes that landed."""
    encode, gate = tablewriter.pq.write_table, threading.Event()

    def gated(*args, **kwargs):
        gate.wait(timeout=60)
        encode(*args, **kwargs)

    monkeypatch.setattr(tablewriter.pq, "write_table", gated)
    writer = ShardWriter(tmp_path / "problems", "problems", META)
    stored = writer.submit("shard-00000", _problems(0, 3))
    assert not stored.done()
    assert not (tmp_path / "problems" / "shard-00000.parquet").exists()
    gate.set()
    manifest = writer.finalize()
    assert stored.result() == tmp_path / "problems" / "shard-00000.parquet"
    [entry] = manifest.shards
    assert entry.checksum == file_checksum(stored.result())
    assert entry.bytes == stored.result().stat().st_size


def test_a_failed_background_store_is_raised_by_the_next_call_and_frees_the_table(
    tmp_path, monkeypatch
):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    writer = ShardWriter(tmp_path / "problems", "problems", META)
    writer.write("shard-00000", _problems(0, 2))
    monkeypatch.setattr(tablewriter.pq, "write_table", full_disk)
    writer.submit("shard-00001", _problems(2, 2))
    with pytest.raises(OSError, match="No space left"):
        writer.finalize()
    writer.close()
    monkeypatch.undo()
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "problems").iterdir())
    with ShardWriter(tmp_path / "problems", "problems", META) as resumed:  # the lock is free
        assert resumed.completed() == {"shard-00000"}


def test_a_malformed_source_line_is_named_with_its_file_and_line(tmp_path):
    from tracefactory.errors import ConfigError
    from tracefactory.io import read_dataset

    source = tmp_path / "problems.jsonl"
    source.write_text('{"problem": "a", "answer": "1"}\n\n{"problem": "b", "answer": \n')
    with pytest.raises(ConfigError, match=rf"{re.escape(str(source))} line 3: Expecting value"):
        read_dataset(str(source), None, "train", ["problem", "answer"])
