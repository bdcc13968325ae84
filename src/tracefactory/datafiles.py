"""Input datasets and published dataset folders: the files that are not stage tables.

Problem sources and benchmark files are read here (local JSONL/JSON/Parquet/CSV, or a Hub id through
`datasets`), and so is their content fingerprint; the published dataset's Parquet files are written
here. Stage tables live in ``tracefactory.io``, which re-exports these names.
"""

from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tracefactory.config import BenchmarkConfig
from tracefactory.errors import ConfigError, StageInputError
from tracefactory.integrity import file_checksum
from tracefactory.schemas import TableSchema

_DATASET_FORMATS = {
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}


class SplitFileWriter:
    """Parquet files of one dataset config, rotated every ``rows_per_file`` rows (and, with
    ``max_file_bytes``, before a write would take a file past that many Arrow bytes), one sequence
    per split, named as the Hub expects (``<split>-00000-of-00002.parquet``) when closed. Each
    ``write`` is one row group per file it lands in: callers bound row groups by what they pass.

    For published dataset folders, which ``datasets.load_dataset`` reads; stage tables use
    ``ShardWriter``. Every write is validated against ``schema``.
    """

    def __init__(
        self,
        folder: Path,
        schema: TableSchema,
        metadata: dict,
        rows_per_file: int,
        max_file_bytes: int | None = None,
    ):
        self.folder, self.schema, self.rows_per_file = folder, schema, rows_per_file
        self.max_file_bytes = max_file_bytes
        self.file_bytes: dict[str, int] = {}
        self.arrow = schema.arrow.with_metadata(metadata)
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.in_file: dict[str, int] = {}
        self.paths: dict[str, list[Path]] = {}
        self.rows: dict[str, int] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, split: str, table: pa.Table) -> None:
        table = self.schema.validate(table).replace_schema_metadata(self.arrow.metadata)
        if (
            self.max_file_bytes is not None
            and self.in_file.get(split)
            and self.file_bytes[split] + table.nbytes > self.max_file_bytes
        ):
            self.in_file[split] = self.rows_per_file  # full: the next _writer starts a file
        while table.num_rows:
            writer = self._writer(split)
            room = self.rows_per_file - self.in_file[split]
            part = table.slice(0, room)
            writer.write_table(part)
            taken = min(room, table.num_rows)
            self.in_file[split] += taken
            self.file_bytes[split] += part.nbytes
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
        self.in_file[split] = self.file_bytes[split] = 0
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


def dataset_fingerprint(path: str) -> str:
    """What identifies a dataset's content, for the params hash of the table made from it.

    A local file (or glob) is its files' content checksums in path order (the order its rows are
    read in), so replacing a file changes it and moving or respelling the path does not. A Hub id
    identifies itself (pin a revision for more).
    """
    if _local_format(path) is None:
        return path
    files = sorted(glob.glob(path)) or [path]
    return ",".join(file_checksum(f) for f in files)


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
        detail = (_first_bad_json_line(path) if path.endswith(".jsonl") else None) or _root(e)
        raise ConfigError(f"cannot load {where} {path!r} (split {split!r}): {detail}") from e
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise ConfigError(
            f"dataset {path!r} has no column(s) {missing}; its columns are {dataset.column_names}"
        )
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    return dataset.select_columns(columns)


def _first_bad_json_line(path: str) -> str | None:
    """``<file> line <n>: <what>`` for the first line of a JSON Lines file (or glob) that is not a
    JSON object, or None: `datasets` reports only that generating the dataset failed."""
    for name in sorted(glob.glob(path)) or [path]:
        with open(name, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    if not isinstance(json.loads(line), dict):
                        return f"{name} line {number}: not a JSON object"
                except ValueError as e:
                    return f"{name} line {number}: {e}"
    return None


def _root(error: BaseException) -> str:
    """The innermost cause's message: `datasets` wraps the informative error in a generic one."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return f"{type(error).__name__}: {error}"


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
