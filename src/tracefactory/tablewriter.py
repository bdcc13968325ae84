"""Writing a stage table: shards written atomically, stale shards replaced, the manifest last.

A shard is written to a hidden temporary name, fsynced and renamed into place, so its final name
is its completion record: a crash leaves at most a temporary file, which no reader lists and the
next writer removes. A rerun asks the writer which shards are complete and skips them: those with
a recorded checksum (``integrity.recorded_shards``), the right size and this run's resume keys.
The manifest is written last, when every shard is in place. Every shard is validated against its
contract in ``schemas/`` and carries the table metadata in its Parquet footer; one writer holds a
table at a time (``tracefactory.integrity.TableLock``). Import ``ShardWriter`` from
``tracefactory.io``.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tracefactory.errors import SchemaError, ShardError
from tracefactory.integrity import (
    MANIFEST_NAME,
    SHARD_NAME,
    Manifest,
    ResumeRecord,
    ShardEntry,
    TableLock,
    buffer_checksum,
    file_checksum,
    package_versions,
    recorded_shards,
    require_own_table,
    stale_reason,
)
from tracefactory.schemas import TableSchema, load_schema

logger = logging.getLogger(__name__)

_TMP_PREFIX = ".tmp-"
_COUNTS_KEY = "shard_counts"
# Metadata keys that must agree between a resumed run and the shards already on disk. The package
# versions are among them: a run after an upgrade redoes the table rather than mixing versions.
_RESUME_KEYS = ("params_hash", "schema_version", "tokenizer_hash", "package_versions")


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
    releases it (use the writer as a context manager). ``submit`` encodes and stores a shard in a
    background thread while the caller produces the next one; at most one shard is in flight, and
    every other method waits for it to land first. Shards written under other params, or
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
        ConfigError: if the folder holds another stage's table (it would be deleted).
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
            require_own_table(self.directory, self.metadata.get("producer"))
            self._record = ResumeRecord(self.directory)
            self._listed = recorded_shards(self.directory, self.metadata, _RESUME_KEYS)
            self._stale = self._find_stale()
            self._retired = False  # set when the first shard of this run replaces the manifest
        except BaseException:
            self._lock.release()
            raise
        self._written: dict[str, ShardEntry] = {}  # this run's shards
        self._background: ThreadPoolExecutor | None = None  # started by the first ``submit``
        self._in_flight: Future | None = None  # the shard ``submit`` is still storing

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for a shard still being stored, then release the table's lock (the writer cannot
        write afterwards).

        Raises:
            OSError: if that shard could not be stored (the lock is released all the same).
        """
        try:
            self._land()
        finally:
            if self._background is not None:
                self._background.shutdown()
                self._background = None
            self._lock.release()

    def shard_path(self, shard: str) -> Path:
        return self.directory / f"{shard}.parquet"

    def completed(self) -> set[str]:
        """Names of the shards already written for these params (a rerun skips these)."""
        self._land()
        return {p.stem for p in _shard_files(self.directory) if p not in self._stale}

    def redo(self, shards: set[str]) -> None:
        """Treat these complete shards as stale: this run recomputes them, and they are replaced
        once its first shard lands (``--fresh``, or a shard whose side outputs are missing)."""
        self._stale |= {self.shard_path(shard) for shard in shards}

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

        Returns:
            The shard's final path, once it is there.

        Raises:
            ShardError: if the name is not a valid shard name or the shard already exists.
            SchemaError: if the data violates the table's contract.
        """
        return self.submit(shard, data, counts).result()

    def submit(
        self,
        shard: str,
        data: pa.Table | pl.DataFrame | list[dict],
        counts: Mapping[str, int] | None = None,
    ) -> Future[Path]:
        """``write``, returning once ``data`` is validated: a background thread then encodes the
        shard, checksums and stores it (temp file, fsync, rename) while the caller produces the
        next one. Parquet encoding and polars both release the GIL, so the two overlap.

        The shard submitted before must land first: its error, if any, is raised here (and by
        ``completed``, ``finalize`` and ``close``, which wait for it too).

        Returns:
            A future of the shard's final path: done once the shard is in place.

        Raises:
            ShardError: if the name is not a valid shard name or the shard already exists.
            SchemaError: if the data violates the table's contract.
            OSError: if storing the shard submitted before failed.
        """
        self._land()
        if not SHARD_NAME.match(shard):
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
        if self._background is None:
            self._background = ThreadPoolExecutor(1, thread_name_prefix="shard-writer")
        self._in_flight = self._background.submit(self._store, shard, table)
        return self._in_flight

    def _land(self) -> None:
        """Wait for the shard in flight, raising its error."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def _store(self, shard: str, table: pa.Table) -> Path:
        """Encode in memory, checksum those bytes, then temp file, fsync, rename: the checksum
        is of exactly the bytes written, without reading the file back."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        encoded = sink.getvalue()
        entry = ShardEntry(shard, table.num_rows, encoded.size, buffer_checksum(encoded))
        final = self.shard_path(shard)
        tmp = self.directory / f"{_TMP_PREFIX}{shard}-{uuid.uuid4().hex[:8]}.parquet"
        try:
            with open(tmp, "wb") as file:
                file.write(encoded)
                file.flush()
                os.fsync(file.fileno())
            self._retire_manifest()
            self._record.add(entry)  # before the rename: a shard in place always has its entry
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._written[shard] = entry
        _fsync_directory(self.directory)
        return final

    def finalize(self, expected: set[str] | None = None) -> Manifest:
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
            self._retire_manifest()
        files = _shard_files(self.directory)
        self._check_unique_keys(files)
        shards, counts = [], Counter()
        for path in files:  # one footer read per shard: the counts it carries
            shards.append(self._entry(path))
            footer = pq.ParquetFile(path).metadata.metadata or {}
            counts.update(json.loads(footer.get(_COUNTS_KEY.encode(), b"{}")))
        manifest = Manifest(
            table=self.schema.name,
            schema_version=self.schema.version,
            shards=tuple(shards),
            metadata=self.metadata,
            counts=dict(counts),
        )
        manifest.write(self.directory)
        self._record.remove()  # the manifest holds every checksum now
        self.close()  # the table is whole: the next writer may take it
        return manifest

    def _entry(self, path: Path) -> ShardEntry:
        """A shard's manifest entry: this run's from ``write``; an earlier run's hashed now and
        held to what that run recorded, so damage is never blessed into a new manifest."""
        if path.stem in self._written:
            return self._written[path.stem]
        listed = self._listed.get(path.stem)
        actual = (path.stat().st_size, file_checksum(path))
        if listed is None or (listed.bytes, listed.checksum) != actual:
            recorded = "none" if listed is None else f"{listed.bytes} bytes, {listed.checksum}"
            raise ShardError(
                f"{path}: changed since its table was written (recorded: {recorded}; now: "
                f"{actual[0]} bytes, {actual[1]}); delete it and rerun this stage to rewrite it"
            )
        return listed

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
        """Shards this run must not resume: written under other params or package versions,
        unreadable, of another size than recorded, or with no recorded checksum. Resuming must
        never mix two configurations, nor keep a shard nothing can vouch for."""
        stale = set()
        for path in _shard_files(self.directory):
            why = stale_reason(path, self._listed.get(path.stem), self.metadata, _RESUME_KEYS)
            if why:
                logger.warning("%s will be replaced once this run writes a shard: %s", path, why)
                stale.add(path)
        return stale

    def _retire_manifest(self) -> None:
        """Replace the old manifest by the resume record and remove the stale shards (once per
        run, just before the first new shard lands): the table is incomplete from here until
        ``finalize``, but every kept shard's checksum stays recorded."""
        if self._retired:
            return
        kept = {p.stem for p in _shard_files(self.directory) if p not in self._stale}
        self._record.start(self.metadata, (e for n, e in self._listed.items() if n in kept))
        (self.directory / MANIFEST_NAME).unlink(missing_ok=True)
        for path in sorted(self._stale):
            logger.info("removing stale %s", path)
            path.unlink(missing_ok=True)
        self._stale = set()
        self._retired = True


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
