"""Where a training dataset's rows come from: a folder or a Hub id, its files, and the
memory-mapped Arrow tables ``datasets`` makes of them.

What the data is (its fingerprint) is computed from the files' content, never from names or
times, so a rebuilt folder is never served from a stale copy.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tracefactory.errors import ConfigError, SchemaError
from tracefactory.integrity import FOLDER_RECORD_NAME, file_checksum, verify_folder

logger = logging.getLogger(__name__)


def data_files(folder: Path, config: str) -> list[Path]:
    """The Parquet files of ``config`` (its subfolder), or every Parquet file of the folder.

    A folder ``tracefactory dataset`` wrote carries ``checksums.json``: every Parquet file is held
    to it first, so a damaged or edited dataset is refused before anything trains on it.

    Raises:
        ConfigError: the folder holds no Parquet files.
        StageInputError: a file differs from the folder's ``checksums.json``.
    """
    fix = "rebuild the dataset (`tracefactory dataset` or `dvc repro dataset`) or download it again"
    if not verify_folder(folder, fix):
        logger.info("%s has no %s: its files cannot be checked", folder, FOLDER_RECORD_NAME)
    files = sorted((folder / config).rglob("*.parquet")) if (folder / config).is_dir() else []
    files = files or sorted(folder.rglob("*.parquet"))
    if not files:
        raise ConfigError(f"dataset folder {folder} holds no Parquet files")
    return files


def fingerprint(files: list[Path], root: Path) -> str:
    """SHA-256 over each file's name (relative to ``root``) and content checksum: what the data is.

    The checksums are ``integrity.file_checksum``'s, remembered by file identity, so a training
    start over an unchanged dataset costs a ``stat`` per file, not a read of every byte.
    """
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\0{file_checksum(path)}\n".encode())
    return digest.hexdigest()


def tokenizer_metadata(files: list[Path]) -> dict[str, str]:
    """``tokenizer`` and ``tokenizer_hash`` from the Parquet metadata (none: another producer)."""
    meta = pq.read_schema(files[0]).metadata or {}
    return {
        k.decode(): v.decode() for k, v in meta.items() if k in (b"tokenizer", b"tokenizer_hash")
    }


@dataclass(frozen=True)
class LoadedSplit:
    """A split as ``datasets`` holds it: the mapped rows and the Arrow cache files behind them."""

    table: pa.Table
    arrow_files: tuple[str, ...]  # in row order; empty when the rows are in memory


def load_splits(
    folder: Path, config: str, cache_dir: str | None, files: list[Path], content: str
) -> dict[str, LoadedSplit]:
    """The memory-mapped Arrow table of each Hub split, read with ``datasets.load_dataset``.

    ``datasets`` keys its Arrow copy of a local folder by file names and times, not content, so a
    folder rebuilt with the same file names can be served from a stale copy (seen: 68 rows of an
    earlier build for 10,694 in the files). The copy lives in a cache folder named by the data's
    ``content`` fingerprint, and the rows read are checked against the files' own row counts.

    Raises:
        ConfigError: the folder or config cannot be loaded.
        SchemaError: the rows read differ from the rows in the files.
    """
    import datasets

    base = Path(cache_dir) if cache_dir else Path(datasets.config.HF_DATASETS_CACHE)
    try:
        loaded = datasets.load_dataset(
            str(folder), config, cache_dir=str(base / "tracefactory" / content[:16])
        )
    except Exception as e:  # datasets raises many types (missing config, builder errors)
        raise ConfigError(f"cannot load dataset {folder} (config {config!r}): {e}") from e
    splits = {
        name: LoadedSplit(split.data.table, tuple(f["filename"] for f in split.cache_files))
        for name, split in loaded.items()
    }
    read = sum(split.table.num_rows for split in splits.values())
    stored = sum(pq.read_metadata(path).num_rows for path in files)
    if read != stored:
        raise SchemaError(
            f"dataset {folder} ({config}): `datasets` returned {read} rows but the files hold "
            f"{stored}; delete its cache under {base} and rerun"
        )
    return splits
