"""Sharded Parquet tables: the one place that reads and writes stage data.

A table is a folder of shards (``<shard>.parquet``) plus a manifest (``_manifest.json``). A shard
is written to a hidden temporary name and renamed into place, so its final name is its completion
record: a crash leaves at most a temporary file, which no reader lists and the next writer removes.
A rerun asks the writer which shards are complete and skips them. The manifest is written last,
when every shard is in place; readers refuse a folder without one, so a downstream stage never
reads half a table.

Every shard is validated against its contract in ``schemas/`` and carries the table metadata
(producer, params hash, package versions, schema version, tokenizer) in its Parquet footer.
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
from importlib import metadata as importlib_metadata
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from tracefactory.errors import SchemaError, ShardError, StageInputError
from tracefactory.schemas import TableSchema, load_schema

logger = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
_SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]*$")
_TMP_PREFIX = ".tmp-"
_COUNTS_KEY = "shard_counts"
# Metadata keys that must agree between a resumed run and the shards already on disk.
_RESUME_KEYS = ("params_hash", "schema_version", "tokenizer_hash")
_VERSIONED_PACKAGES = (
    "tracefactory",
    "torch",
    "transformers",
    "vllm",
    "ray",
    "math-verify",
    "pyarrow",
)


def package_versions() -> str:
    """JSON object of the versions of the packages that shape the data (absent ones omitted)."""
    versions = {}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return json.dumps(versions, sort_keys=True)


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

    Args:
        directory: the table's folder (``data/<stage>``); created if missing.
        schema: the table's contract name in ``schemas/`` (or a loaded ``TableSchema``).
        metadata: table metadata (producer, params_hash, tokenizer, tokenizer_hash, ...);
            ``schema_version`` and ``package_versions`` are added here.

    Raises:
        SchemaError: if ``metadata`` lacks a key the contract requires.
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
        (self.directory / MANIFEST_NAME).unlink(missing_ok=True)  # incomplete until finalize()
        for leftover in self.directory.glob(f"{_TMP_PREFIX}*"):
            logger.info("removing %s left by an interrupted write", leftover)
            leftover.unlink()
        self._drop_stale_shards()

    def shard_path(self, shard: str) -> Path:
        return self.directory / f"{shard}.parquet"

    def completed(self) -> set[str]:
        """Names of the shards already written (a rerun skips these)."""
        return {p.stem for p in _shard_files(self.directory)}

    def write(
        self,
        shard: str,
        data: pa.Table | pl.DataFrame | list[dict],
        counts: Mapping[str, int] | None = None,
    ) -> Path:
        """Validate ``data`` and write it as shard ``shard``: temp file, fsync, rename.

        ``counts`` (what producing the shard did and dropped) travel in the shard's footer, so
        the table's totals survive a resumed run that skips the shard.

        Raises:
            ShardError: if the name is not a valid shard name or the shard already exists.
            SchemaError: if the data violates the table's contract.
        """
        if not _SHARD_NAME.match(shard):
            raise ShardError(
                f"invalid shard name {shard!r}: use letters, digits, '_', '.', '-', '='"
            )
        final = self.shard_path(shard)
        if final.exists():
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
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_directory(self.directory)
        return final

    def finalize(self, expected: set[str] | None = None) -> dict:
        """Check the table is whole and unique by key, then write its manifest.

        Args:
            expected: shard names that must all be present (the stage's plan).

        Raises:
            ShardError: if an expected shard is missing or a key appears twice.
        """
        done = self.completed()
        if expected is not None and not expected <= done:
            missing = sorted(expected - done)
            raise ShardError(
                f"{self.directory}: {len(missing)} shard(s) missing, e.g. {missing[:3]}"
            )
        files = _shard_files(self.directory)
        self._check_unique_keys(files)
        shards, counts = [], Counter()
        for path in files:  # one footer read per shard: rows and the counts it carries
            footer = pq.ParquetFile(path).metadata
            shards.append(
                {"name": path.stem, "rows": footer.num_rows, "bytes": path.stat().st_size}
            )
            counts.update(json.loads((footer.metadata or {}).get(_COUNTS_KEY.encode(), b"{}")))
        manifest = {
            "table": self.schema.name,
            "schema_version": self.schema.version,
            "rows": sum(s["rows"] for s in shards),
            "counts": dict(sorted(counts.items())),
            "shards": shards,
            "metadata": self.metadata,
        }
        tmp = self.directory / f"{_TMP_PREFIX}{MANIFEST_NAME}"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, self.directory / MANIFEST_NAME)
        return manifest

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

    def _drop_stale_shards(self) -> None:
        """Remove shards written under other params: resuming must never mix two configurations."""
        stale = []
        for path in _shard_files(self.directory):
            found = pq.read_schema(path).metadata or {}
            for key in _RESUME_KEYS:
                ours = self.metadata.get(key)
                theirs = found.get(key.encode(), b"").decode() or None
                if ours != theirs:
                    stale.append((path, key, theirs, ours))
                    break
        for path, key, theirs, ours in stale:
            logger.warning(
                "removing %s: written with %s=%s, this run has %s", path, key, theirs, ours
            )
            path.unlink()


class TableReader:
    """Reads a finished table (one whose manifest exists), streaming where possible.

    Raises:
        StageInputError: if the folder or its manifest is missing, or a listed shard is gone.
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
        self.manifest = json.loads(manifest_path.read_text())
        self.paths = [self.directory / f"{s['name']}.parquet" for s in self.manifest["shards"]]
        gone = [p for p in self.paths if not p.is_file()]
        if gone:
            raise StageInputError(f"{self.directory}: manifest lists missing shard(s) {gone[:3]}")

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.manifest["metadata"])

    @property
    def fingerprint(self) -> str:
        """Short hash identifying this table's content (its shards' names, rows and sizes, and
        the params it was made with). A downstream stage puts it in its own params hash, so its
        resumable shards are dropped when its input changed."""
        identity = [self.manifest["shards"], self.manifest["metadata"].get("params_hash")]
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def num_rows(self) -> int:
        return int(self.manifest["rows"])

    def scan(self) -> pl.LazyFrame:
        """A lazy frame over every shard; filters and projections reach the Parquet scan."""
        if not self.paths:
            schema = load_schema(self.manifest["table"]).arrow
            return pl.from_arrow(schema.empty_table()).lazy()
        return pl.scan_parquet(self.paths)

    def iter_batches(
        self, columns: list[str] | None = None, batch_size: int = 4096
    ) -> Iterator[pa.RecordBatch]:
        """Stream the table as record batches without loading it whole."""
        dataset = pads.dataset(self.paths, format="parquet")
        yield from dataset.to_batches(columns=columns, batch_size=batch_size)

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The whole table in memory (for small tables)."""
        if not self.paths:
            return load_schema(self.manifest["table"]).arrow.empty_table()
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
