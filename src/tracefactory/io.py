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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from tracefactory.datafiles import (
    SplitFileWriter,
    dataset_fingerprint,
    dvc_md5,
    read_benchmark,
    read_dataset,
)
from tracefactory.errors import SchemaError, ShardError, StageInputError
from tracefactory.integrity import (
    CHECKSUM_ALGORITHM,
    TableLock,
    file_checksum,
    listed_shards,
    package_versions,
    shard_damage,
    stale_reason,
)
from tracefactory.schemas import TableSchema, load_schema

logger = logging.getLogger(__name__)

__all__ = [
    "MANIFEST_NAME",
    "ShardWriter",
    "SplitFileWriter",
    "TableReader",
    "dataset_fingerprint",
    "dvc_md5",
    "package_versions",
    "read_benchmark",
    "read_dataset",
]

MANIFEST_NAME = "_manifest.json"
_SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]*$")
_TMP_PREFIX = ".tmp-"
_COUNTS_KEY = "shard_counts"
# Metadata keys that must agree between a resumed run and the shards already on disk.
_RESUME_KEYS = ("params_hash", "schema_version", "tokenizer_hash")


def _as_arrow(data: pa.Table | pl.DataFrame | list[dict], schema: TableSchema) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pl.DataFrame):
        return data.to_arrow()
    try:
        return pa.Table.from_pylist(list(data), schema=schema.arrow)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as e:
        raise SchemaError(f"table {schema.name!r}: rows do not match the schema: {e}") from e


class ShardWriter:
    """Writes the shards of one table atomically and records which are complete.

    One writer per table: the constructor takes the table's lock (``TableLock``) and ``close``
    releases it (use the writer as a context manager). Shards written under other params, or
    damaged, are *stale*: they stay in place, and the manifest with them, until this run's first
    shard is ready to replace them. A run that fails before producing anything (a bad source path,
    an unreachable cluster, a corrupt input) so leaves the table exactly as it was.

    Args:
        directory: the table's folder (``data/<stage>``); created if missing.
        schema: the table's contract name in ``schemas/`` (or a loaded ``TableSchema``).
        metadata: table metadata (producer, params_hash, tokenizer, tokenizer_hash, ...);
            ``schema_version`` and ``package_versions`` are added here.

    Raises:
        SchemaError: if ``metadata`` lacks a key the contract requires.
        TableLockedError: if another process is writing this table.
    """

    def __init__(
        self, directory: str | Path, schema: str | TableSchema, metadata: Mapping[str, str]
    ) -> None:
        self.directory = Path(directory)
        self.schema = load_schema(schema) if isinstance(schema, str) else schema
        self.metadata = {
            "schema_version": str(self.schema.version),
            "package_versions": package_versions(),
            **{k: str(v) for k, v in metadata.items()},
        }
        missing = [k for k in self.schema.metadata_keys if k not in self.metadata]
        if missing:
            raise SchemaError(f"table {self.schema.name!r}: metadata lacks {missing}")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = TableLock(self.directory)
        self._lock.acquire()
        try:
            for leftover in self.directory.glob(f"{_TMP_PREFIX}*"):
                logger.info("removing %s left by an interrupted write", leftover)
                leftover.unlink()
            manifest = self.directory / MANIFEST_NAME
            self._listed = listed_shards(manifest, self.metadata, _RESUME_KEYS)
            self._stale = self._find_stale()
        except BaseException:
            self._lock.release()
            raise
        self._written: dict[str, dict] = {}  # this run's shards: bytes and checksum

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the table's lock (the writer cannot write afterwards)."""
        self._lock.release()

    def shard_path(self, shard: str) -> Path:
        return self.directory / f"{shard}.parquet"

    def completed(self) -> set[str]:
        """Names of the shards already written for these params (a rerun skips these)."""
        return {p.stem for p in _shard_files(self.directory) if p not in self._stale}

    def write(
        self,
        shard: str,
        data: pa.Table | pl.DataFrame | list[dict],
        counts: Mapping[str, int] | None = None,
    ) -> Path:
        """Validate ``data`` and write it as shard ``shard``: temp file, fsync, rename.

        ``counts`` (what producing the shard did and dropped) travel in the shard's footer, so
        the table's totals survive a resumed run that skips the shard. The first write of a run
        removes the stale shards and the old manifest: only now is there something to replace
        them with.

        Raises:
            ShardError: if the name is not a valid shard name or the shard already exists.
            SchemaError: if the data violates the table's contract.
        """
        if not _SHARD_NAME.match(shard):
            raise ShardError(
                f"invalid shard name {shard!r}: use letters, digits, '_', '.', '-', '='"
            )
        if not self._lock.held:
            raise ShardError(f"the writer of {self.directory} is closed")
        final = self.shard_path(shard)
        if final.exists() and final not in self._stale:
            raise ShardError(f"shard {shard!r} of {self.directory} is already complete")
        table = self.schema.validate(_as_arrow(data, self.schema))
        footer = {**self.metadata, _COUNTS_KEY: json.dumps(dict(counts or {}), sort_keys=True)}
        table = table.replace_schema_metadata(footer)
        tmp = self.directory / f"{_TMP_PREFIX}{shard}-{uuid.uuid4().hex[:8]}.parquet"
        try:
            with open(tmp, "wb") as sink:
                pq.write_table(table, sink, compression="zstd")
                sink.flush()
                os.fsync(sink.fileno())
            entry = {"bytes": tmp.stat().st_size, "checksum": file_checksum(tmp)}
            self._retire_stale()
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._written[shard] = entry
        _fsync_directory(self.directory)
        return final

    def finalize(self, expected: set[str] | None = None) -> dict:
        """Check the table is whole and unique by key, write its manifest (which records every
        shard's rows, size and content checksum) and release the table's lock.

        Args:
            expected: shard names that must all be present (the stage's plan).

        Raises:
            ShardError: if an expected shard is missing, a key appears twice, or a shard kept from
                an earlier run no longer has the checksum its manifest recorded.
        """
        done = self.completed()
        if expected is not None and not expected <= done:
            missing = sorted(expected - done)
            raise ShardError(
                f"{self.directory}: {len(missing)} shard(s) missing, e.g. {missing[:3]}"
            )
        if self._stale:
            self._retire_stale()
        files = _shard_files(self.directory)
        self._check_unique_keys(files)
        shards, counts = [], Counter()
        for path in files:  # one footer read per shard: rows and the counts it carries
            footer = pq.ParquetFile(path).metadata
            shards.append({"name": path.stem, "rows": footer.num_rows, **self._checksum(path)})
            counts.update(json.loads((footer.metadata or {}).get(_COUNTS_KEY.encode(), b"{}")))
        manifest = {
            "table": self.schema.name,
            "schema_version": self.schema.version,
            "rows": sum(s["rows"] for s in shards),
            "counts": dict(sorted(counts.items())),
            "checksum": CHECKSUM_ALGORITHM,
            "shards": shards,
            "metadata": self.metadata,
        }
        tmp = self.directory / f"{_TMP_PREFIX}{MANIFEST_NAME}"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, self.directory / MANIFEST_NAME)
        self.close()  # the table is whole: the next writer may take it
        return manifest

    def _checksum(self, path: Path) -> dict:
        """Size and checksum of a shard: this run's from ``write``; an earlier run's hashed now and
        held to what the old manifest recorded, so damage is never blessed into a new manifest."""
        if path.stem in self._written:
            return self._written[path.stem]
        entry = {"bytes": path.stat().st_size, "checksum": file_checksum(path)}
        listed = self._listed.get(path.stem)
        if listed is not None and listed != entry:
            raise ShardError(
                f"{path}: changed since its table was written (manifest: {listed}, now: {entry}); "
                f"delete it and rerun this stage to rewrite it"
            )
        return entry

    def _check_unique_keys(self, files: list[Path]) -> None:
        if not files:
            return
        key = self.schema.key
        duplicates = (
            pl.scan_parquet(files)
            .group_by(key)
            .agg(pl.len().alias("copies"))
            .filter(pl.col("copies") > 1)
            .head(3)
            .collect()
        )
        if duplicates.height:
            raise ShardError(
                f"{self.directory}: key {key!r} is not unique, e.g. {duplicates[key].to_list()}"
            )

    def _find_stale(self) -> set[Path]:
        """Shards this run must not resume: written under other params, unreadable, or of another
        size than the manifest recorded. Resuming must never mix two configurations."""
        stale = set()
        for path in _shard_files(self.directory):
            why = stale_reason(path, self._listed.get(path.stem), self.metadata, _RESUME_KEYS)
            if why:
                logger.warning("%s will be replaced once this run writes a shard: %s", path, why)
                stale.add(path)
        return stale

    def _retire_stale(self) -> None:
        """Remove the old manifest and the stale shards (once per run, just before the first new
        shard lands): the table is incomplete from here until ``finalize``."""
        (self.directory / MANIFEST_NAME).unlink(missing_ok=True)
        for path in sorted(self._stale):
            logger.info("removing stale %s", path)
            path.unlink(missing_ok=True)
        self._stale = set()


class TableReader:
    """Reads a finished table (one whose manifest exists), streaming where possible.

    Every shard's size is checked against the manifest when the reader opens (a ``stat`` per
    shard), and its content checksum the first time the reader reads it (``scan_shard``, ``scan``,
    ``lookup``, ``read``, ``iter_batches``): one extra sequential read of each shard, at memory
    bandwidth for xxh3, small beside what any stage does with the rows.

    Raises:
        StageInputError: if the folder or its manifest is missing, a listed shard is gone, or a
            shard's size or checksum is not what the manifest recorded (naming the file and the
            stage to rerun).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        manifest_path = self.directory / MANIFEST_NAME
        if not manifest_path.is_file():
            hint = "does not exist" if not self.directory.exists() else "has no manifest"
            raise StageInputError(
                f"input table {self.directory} {hint}: run the stage that produces it first "
                f"(e.g. `dvc repro`)"
            )
        try:
            self.manifest = json.loads(manifest_path.read_text())
            self.shards = {s["name"]: s for s in self.manifest["shards"]}
            producer = self.manifest["metadata"].get("producer", "")
        except (ValueError, KeyError, TypeError) as e:
            raise StageInputError(
                f"{manifest_path}: not a readable manifest ({e}); rerun the stage that writes "
                f"{self.directory}"
            ) from e
        self._fix = (
            f"rerun the {producer!r} stage (`tracefactory {producer}` or `dvc repro {producer}`)"
        )
        if self.manifest.get("checksum") != CHECKSUM_ALGORITHM:
            raise StageInputError(
                f"{manifest_path}: records no {CHECKSUM_ALGORITHM} shard checksums (written by an "
                f"older tracefactory); {self._fix} to rewrite the table"
            )
        self.paths = [self.directory / f"{name}.parquet" for name in self.shards]
        self._check(self.paths, content=False)
        self._verified: set[Path] = set()

    def _check(self, paths: list[Path], content: bool) -> None:
        """Check shards against the manifest: sizes, and with ``content`` checksums (once each)."""
        for path in paths:
            if content and path in self._verified:
                continue
            damage = shard_damage(path, self.shards[path.stem], content)
            if damage:
                raise StageInputError(f"{path}: {damage}; delete it and {self._fix}")
            if content:
                self._verified.add(path)

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.manifest["metadata"])

    @property
    def fingerprint(self) -> str:
        """Short hash of this table's content: every shard's name, rows, size and checksum (the
        bytes include the footer's params hash). A downstream stage puts it in its own params
        hash, so its resumable shards are replaced when its input's content changed, wherever the
        input lives."""
        shards = [[s["name"], s["rows"], s["bytes"], s["checksum"]] for s in self.shards.values()]
        identity = [self.manifest["table"], self.manifest["checksum"], shards]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]

    @property
    def num_rows(self) -> int:
        return int(self.manifest["rows"])

    def scan(self) -> pl.LazyFrame:
        """A lazy frame over every shard; filters and projections reach the Parquet scan."""
        if not self.paths:
            schema = load_schema(self.manifest["table"]).arrow
            return pl.from_arrow(schema.empty_table()).lazy()
        self._check(self.paths, content=True)
        return pl.scan_parquet(self.paths)

    @property
    def shard_names(self) -> list[str]:
        """The table's shards, in manifest (sorted) order."""
        return [path.stem for path in self.paths]

    def scan_shard(self, shard: str) -> pl.LazyFrame:
        """A lazy frame over one shard: a stage's unit of input.

        Raises:
            StageInputError: if the table has no such shard, or the shard is damaged.
        """
        path = self.directory / f"{shard}.parquet"
        if shard not in self.shards:
            raise StageInputError(
                f"{self.directory}: no shard {shard!r} in its manifest; {self._fix}"
            )
        self._check([path], content=True)
        return pl.scan_parquet(path)

    def lookup(self, column: str, values: list, columns: list[str]) -> pl.DataFrame:
        """The rows whose ``column`` is one of ``values`` (a join input such as the roll-ins a
        roll-outs shard continues), with ``columns``; the filter reaches the Parquet scan."""
        return self.scan().filter(pl.col(column).is_in(values)).select(columns).collect()

    def iter_batches(
        self, columns: list[str] | None = None, batch_size: int = 4096
    ) -> Iterator[pa.RecordBatch]:
        """Stream the table as record batches without loading it whole."""
        self._check(self.paths, content=True)
        dataset = pads.dataset(self.paths, format="parquet")
        yield from dataset.to_batches(columns=columns, batch_size=batch_size)

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The whole table in memory (for small tables)."""
        if not self.paths:
            return load_schema(self.manifest["table"]).arrow.empty_table()
        self._check(self.paths, content=True)
        return pads.dataset(self.paths, format="parquet").to_table(columns=columns)


def _shard_files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.glob("*.parquet") if not p.name.startswith((".", "_")) and p.is_file()
    )


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
