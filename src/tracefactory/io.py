"""Sharded Parquet tables: the one place that reads and writes stage tables (input datasets and
published dataset folders are in ``tracefactory.datafiles``, re-exported here).

A table is a folder of shards (``<shard>.parquet``) plus a manifest (``_manifest.json``). A shard
is written to a hidden temporary name and renamed into place, so its final name is its completion
record: a crash leaves at most a temporary file, which no reader lists and the next writer removes.
A rerun asks the writer which shards are complete and skips them. The manifest is written last,
when every shard is in place; readers refuse a folder without one, so a downstream stage never
reads half a table.

Every shard is validated against its contract in ``schemas/`` and carries the table metadata
(producer, params hash, package versions, schema version, tokenizer) in its Parquet footer. The
manifest records each shard's size and content checksum, which readers check; one writer holds a
table at a time (``tracefactory.integrity.TableLock``).

This module is the one import point: the writer lives in ``tablewriter`` (``ShardWriter``) and the
reader in ``tablereader`` (``TableReader``); stages and tests import both from here.

A folder written as a whole (a published dataset, a trained model) is built under
``<folder>.incomplete`` and renamed into place only when complete (``atomic_folder``, as
``datasets`` builds), so a crash never leaves a half-written folder under the final name.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tracefactory.datafiles import (
    SplitFileWriter,
    dataset_fingerprint,
    dvc_md5,
    read_benchmark,
    read_dataset,
)
from tracefactory.integrity import (
    MANIFEST_NAME,
    clear_staging,
    package_versions,
    write_atomically,
)
from tracefactory.tablereader import TableReader
from tracefactory.tablewriter import ShardWriter

__all__ = [
    "MANIFEST_NAME",
    "ShardWriter",
    "SideFiles",
    "SplitFileWriter",
    "TableReader",
    "atomic_folder",
    "dataset_fingerprint",
    "dvc_md5",
    "package_versions",
    "read_benchmark",
    "read_dataset",
]


@contextmanager
def atomic_folder(final: str | Path) -> Iterator[Path]:
    """Yield an empty ``<final>.incomplete`` folder to build in; replace ``final`` with it when the
    block ends without an exception. On an exception the staging folder stays for inspection (the
    next build removes it) and ``final`` is untouched.
    """
    final = Path(final)
    staging = final.with_name(final.name + ".incomplete")
    clear_staging(staging)  # a symlink there is removed, never followed
    staging.mkdir(parents=True)
    yield staging
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staging, final)


class SideFiles:
    """A table's side outputs (a stage's drop log), one JSON-lines file per side output and
    shard, kept beside the table (``data/.<table>.side/<output>/<shard>.jsonl``) so a rerun that
    skips a shard still has them. Each file is written whole (fsync, rename), before its shard:
    a shard is complete only with its side files."""

    def __init__(self, table_dir: str | Path, names: tuple[str, ...]) -> None:
        table_dir = Path(table_dir)
        self.names = names
        self.folder = table_dir.parent / f".{table_dir.name}.side"

    def _path(self, output: str, shard: str) -> Path:
        return self.folder / output / f"{shard}.jsonl"

    def complete(self, shard: str) -> bool:
        return all(self._path(output, shard).is_file() for output in self.names)

    def store(self, shard: str, frames: dict) -> None:
        """Write each side output's polars frame of ``shard``."""
        for output, frame in frames.items():
            path = self._path(output, shard)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, frame.write_ndjson())

    def collect(self, shards: list[str]) -> dict[str, bytes]:
        """Each side output: its shards' files joined in plan order."""
        return {
            output: b"".join(self._path(output, shard).read_bytes() for shard in shards)
            for output in self.names
        }
