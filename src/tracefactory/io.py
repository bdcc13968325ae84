"""Sharded Parquet tables and input datasets: the one place that reads and writes data files.

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

import glob
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

from tracefactory.config import BenchmarkConfig
from tracefactory.errors import ConfigError, SchemaError, ShardError, StageInputError
from tracefactory.schemas import TableSchema, load_schema

logger = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
_SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]*$")
_TMP_PREFIX = ".tmp-"
_COUNTS_KEY = "shard_counts"
# Metadata keys that must agree between a resumed run and the shards already on disk.
_RESUME_KEYS = ("params_hash", "schema_version", "tokenizer_hash")
_DATASET_FORMATS = {
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}
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

    @property
    def shard_names(self) -> list[str]:
        """The table's shards, in manifest (sorted) order."""
        return [path.stem for path in self.paths]

    def scan_shard(self, shard: str) -> pl.LazyFrame:
        """A lazy frame over one shard: a stage's unit of input.

        Raises:
            StageInputError: if the table has no such shard.
        """
        path = self.directory / f"{shard}.parquet"
        if shard not in self.shard_names or not path.is_file():
            raise StageInputError(
                f"{self.directory}: shard {shard!r} is gone; rerun the stage that produces it"
            )
        return pl.scan_parquet(path)

    def lookup(self, column: str, values: list, columns: list[str]) -> pl.DataFrame:
        """The rows whose ``column`` is one of ``values`` (a join input such as the roll-ins a
        roll-outs shard continues), with ``columns``; the filter reaches the Parquet scan."""
        return self.scan().filter(pl.col(column).is_in(values)).select(columns).collect()

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


class SplitFileWriter:
    """Parquet files of one dataset config, rotated every ``rows_per_file`` rows, one sequence per
    split, named as the Hub expects (``<split>-00000-of-00002.parquet``) when closed.

    For published dataset folders, which ``datasets.load_dataset`` reads; stage tables use
    ``ShardWriter``. Every write is validated against ``schema``.
    """

    def __init__(self, folder: Path, schema: TableSchema, metadata: dict, rows_per_file: int):
        self.folder, self.schema, self.rows_per_file = folder, schema, rows_per_file
        self.arrow = schema.arrow.with_metadata(metadata)
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.in_file: dict[str, int] = {}
        self.paths: dict[str, list[Path]] = {}
        self.rows: dict[str, int] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, split: str, table: pa.Table) -> None:
        table = self.schema.validate(table).replace_schema_metadata(self.arrow.metadata)
        while table.num_rows:
            writer = self._writer(split)
            room = self.rows_per_file - self.in_file[split]
            writer.write_table(table.slice(0, room))
            taken = min(room, table.num_rows)
            self.in_file[split] += taken
            self.rows[split] = self.rows.get(split, 0) + taken
            table = table.slice(taken)

    def _writer(self, split: str) -> pq.ParquetWriter:
        if split in self.writers and self.in_file[split] < self.rows_per_file:
            return self.writers[split]
        if split in self.writers:
            self.writers.pop(split).close()
        paths = self.paths.setdefault(split, [])
        paths.append(self.folder / f"{split}-{len(paths):05d}.parquet")
        self.writers[split] = pq.ParquetWriter(paths[-1], self.arrow, compression="zstd")
        self.in_file[split] = 0
        return self.writers[split]

    def close(self) -> tuple[dict[str, list[str]], dict[str, int]]:
        """Close every file and rename them ``<split>-<i>-of-<n>.parquet`` (the Hub convention)."""
        for writer in self.writers.values():
            writer.close()
        names: dict[str, list[str]] = {}
        for split, paths in self.paths.items():
            names[split] = []
            for i, path in enumerate(paths):
                final = path.with_name(f"{split}-{i:05d}-of-{len(paths):05d}.parquet")
                path.rename(final)
                names[split].append(final.name)
        return names, dict(self.rows)


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


def _local_format(path: str) -> str | None:
    """The `datasets` builder for a local path, or None if ``path`` is not a local file."""
    for suffix, builder in _DATASET_FORMATS.items():
        if path.endswith(suffix) and (Path(path).is_file() or glob.glob(path)):
            return builder
    if Path(path).exists():
        raise ConfigError(
            f"{path}: unsupported local file type; use one of {sorted(_DATASET_FORMATS)}"
        )
    return None


def read_dataset(
    path: str, subset: str | None, split: str, columns: list[str], limit: int | None = None
):
    """Read ``columns`` of a local file or Hub dataset as a `datasets.Dataset`.

    A local file (``.jsonl``/``.json``/``.parquet``/``.csv``, globs allowed) is read with
    ``load_dataset(<format>, data_files=...)``, a Hub id with ``load_dataset(id, subset, split)``.

    Raises:
        ConfigError: the dataset cannot be loaded, or lacks one of ``columns`` (naming the
            columns it has).
    """
    import datasets

    builder = _local_format(path)
    try:
        if builder is not None:
            dataset = datasets.load_dataset(builder, data_files={split: path}, split=split)
        else:
            dataset = datasets.load_dataset(path, subset, split=split)
    except Exception as e:  # datasets raises many types (FileNotFound, Hub, builder errors)
        where = "local file" if builder else "Hub dataset (or a local path that does not exist)"
        raise ConfigError(f"cannot load {where} {path!r} (split {split!r}): {e}") from e
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise ConfigError(
            f"dataset {path!r} has no column(s) {missing}; its columns are {dataset.column_names}"
        )
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    return dataset.select_columns(columns)


def read_benchmark(benchmark: BenchmarkConfig, with_answers: bool = True) -> pl.DataFrame:
    """A benchmark file's problems as ``benchmark, benchmark_row, problem`` (and ``answer``).

    One reader for decontamination (problems only) and evaluation (with gold answers), so both
    see the same rows. Cells are read as text: answers are often numbers (AIME's ``204``).

    Raises:
        ConfigError: the benchmark has no path, cannot be read, or lacks a configured column.
    """
    if benchmark.path is None:
        raise ConfigError(f"benchmark {benchmark.name!r} has no path (a file or Hub id)")
    columns = [benchmark.problem_column] + ([benchmark.answer_column] if with_answers else [])
    dataset = read_dataset(
        benchmark.path, benchmark.subset, benchmark.split, columns, benchmark.limit
    )
    frame = pl.DataFrame(
        {
            "benchmark": [benchmark.name] * len(dataset),
            "benchmark_row": list(range(len(dataset))),
            "problem": [None if v is None else str(v) for v in dataset[benchmark.problem_column]],
        },
        schema={"benchmark": pl.String, "benchmark_row": pl.Int64, "problem": pl.String},
    )
    if with_answers:
        answers = [None if v is None else str(v) for v in dataset[benchmark.answer_column]]
        frame = frame.with_columns(pl.Series("answer", answers, dtype=pl.String))
    return frame


def dvc_md5(path: str | Path) -> str:
    """The hash ``dvc.lock`` records for ``path``: a file's md5, or for a folder the md5 of its
    listing (every file's relative path and md5, as DVC serialises it) followed by ``.dir``.

    Computed from the files as they are now, so a record written during a run (the dataset card)
    cites that run's inputs; ``dvc.lock`` itself is written only after the stage finishes.
    """
    path = Path(path)
    if path.is_file():
        return _file_md5(path)
    if not path.is_dir():
        raise StageInputError(f"{path} does not exist: cannot hash it for provenance")
    entries = [
        {"md5": _file_md5(file), "relpath": file.relative_to(path).as_posix()}
        for file in path.rglob("*")
        if file.is_file()
    ]
    listing = json.dumps(sorted(entries, key=lambda e: e["relpath"]), sort_keys=True)
    return hashlib.md5(listing.encode("utf-8")).hexdigest() + ".dir"


def _file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
