"""What makes an artifact trustworthy: content checksums of files and one writer per table.

A checksum here is xxh3-128 of a file's bytes, streamed: it detects any change or damage (it is
not meant to resist tampering) and costs about what reading the file costs. ``file_checksum`` is
the one file fingerprint: every caller (table shards, model weights, source datasets, training
data) uses it. It is cached by the file's identity (path, size, mtime, ctime, inode), in memory for
every file and across runs for large ones, so reading a shard twice or fingerprinting a checkpoint
on every run costs a ``stat``; a replaced or edited file changes its ctime and is hashed again.

A table's record of its shards is a ``Manifest`` (``_manifest.json``, written last). While a
writer adds shards the manifest is gone (the table is incomplete) but the checksums of every shard
kept or written stay in a ``ResumeRecord`` (``_checksums.jsonl``), so a shard damaged between two
runs is never re-blessed, however many runs fail or are killed in between.

A table is written by one process at a time: ``TableLock`` holds an exclusive lock beside the
table's folder and records who holds it, so a second writer fails at once, naming the holder.
The writer's other checks live here too: which shards on disk may be resumed (``stale_reason``),
whether a file still matches its recorded size and checksum (``file_damage``), and the package
versions recorded with every table. So do the records of published folders (``checksums.json``:
``record_folder``, ``verify_folder``) and the guards of output folders (``require_own_table``,
``require_replaceable``, ``clear_staging``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import socket
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from filelock import FileLock, Timeout

from tracefactory.errors import ConfigError, StageInputError, TableLockedError

logger = logging.getLogger(__name__)

CHECKSUM_ALGORITHM = "xxh3_128"
MANIFEST_NAME = "_manifest.json"  # a table's record of its shards: rows, size, checksum
RESUME_RECORD_NAME = "_checksums.jsonl"  # the shards' checksums while the table is incomplete
SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]*$")  # no separators: a shard stays inside
_CHUNK = 8 << 20  # bytes read per step: large enough to stream at disk speed
_CACHE_ENV = "TRACEFACTORY_CACHE"  # folder of the digest cache (default: ~/.cache/tracefactory)
# Files at least this large are remembered across runs (weights, source datasets): rehashing a
# small file costs less than rewriting the cache file would.
_PERSIST_BYTES = 16 << 20
_memory_cache: dict[str, tuple[list[int], str]] = {}
# Metadata key of a generation table: per policy, the backend and its version, the model's
# fingerprint and the prompt template's text hash (``tracefactory.generation.provenance``).
GENERATION_KEY = "generation"
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


def describe_generation(value: str) -> str:
    """One line per engine of a ``generation`` metadata value, for cards and provenance files."""
    try:
        records = json.loads(value)
        return "; ".join(
            f"{r['policy']}: {r['backend']} {r['backend_version']}, model {r['model']} "
            f"(fingerprint {r['model_fingerprint']}), template {r['template']} "
            f"(sha256 {r['template_sha256']})"
            for r in records
        )
    except (ValueError, KeyError, TypeError):
        return ""


def file_checksum(path: str | Path) -> str:
    """xxh3-128 of the file's bytes, remembered while the file's identity is unchanged.

    The identity is (size, mtime, ctime, inode): rewriting, replacing or touching the file changes
    one of them, so a remembered digest is never reused for other bytes, and a caller may check a
    file as often as it reads it. Digests of files of ``_PERSIST_BYTES`` or more are also kept in
    ``~/.cache/tracefactory`` (``TRACEFACTORY_CACHE``), so a multi-GB checkpoint is read once.
    """
    path = Path(path).resolve()
    stat = path.stat()
    identity = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
    key = str(path)
    known = _memory_cache.get(key)
    if known is None and stat.st_size >= _PERSIST_BYTES:
        known = _disk_cache().get(key)
    if known is not None and list(known[0]) == identity:
        _memory_cache[key] = (identity, known[1])
        return known[1]
    digest = _read_checksum(path)
    _memory_cache[key] = (identity, digest)
    if stat.st_size >= _PERSIST_BYTES:
        _save_to_disk_cache(key, identity, digest)
    return digest


def _read_checksum(path: Path) -> str:
    """xxh3-128 of the file's bytes, read in chunks (memory stays flat for any size)."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def buffer_checksum(data: bytes | memoryview | pa.Buffer) -> str:
    """``file_checksum`` of bytes in memory (a shard just encoded, before it is written)."""
    return xxhash.xxh3_128(data).hexdigest()


@dataclass(frozen=True)
class ShardEntry:
    """One shard as its table records it: rows, size in bytes and content checksum."""

    name: str
    rows: int
    bytes: int
    checksum: str

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "rows": self.rows,
            "bytes": self.bytes,
            "checksum": self.checksum,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> ShardEntry:
        """Raises ValueError for a malformed entry or a name that is not a plain shard name
        (``../../x`` would read or delete a file outside the table)."""
        entry = cls(data["name"], data["rows"], data["bytes"], data["checksum"])
        if not isinstance(entry.name, str) or not SHARD_NAME.match(entry.name):
            raise ValueError(f"invalid shard name {entry.name!r}")
        counts = (entry.rows, entry.bytes)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
            raise ValueError(f"shard {entry.name!r}: rows and bytes must be counts, got {counts}")
        if not isinstance(entry.checksum, str):
            raise ValueError(f"shard {entry.name!r}: checksum {entry.checksum!r} is not text")
        return entry


@dataclass(frozen=True)
class Manifest:
    """A finished table's record of itself (``_manifest.json``): the one place its format lives.

    The writer writes it last, so its presence means the table is whole; readers hold every shard
    to its entry. ``rows`` is stored too (for people and tools reading the JSON) and checked
    against the entries when read, so a manifest that lost an entry is refused.
    """

    table: str
    schema_version: int
    shards: tuple[ShardEntry, ...]
    metadata: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)
    checksum: str = CHECKSUM_ALGORITHM

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def entries(self) -> dict[str, ShardEntry]:
        return {s.name: s for s in self.shards}

    def to_json(self) -> str:
        return json.dumps(
            {
                "table": self.table,
                "schema_version": self.schema_version,
                "rows": self.rows,
                "counts": dict(sorted(self.counts.items())),
                "checksum": self.checksum,
                "shards": [s.as_json() for s in self.shards],
                "metadata": self.metadata,
            },
            indent=1,
        )

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """The manifest at ``path``.

        Raises:
            OSError: it cannot be read.
            ValueError: it is not a manifest, names a shard twice or outside the table, or its row
                total differs from its shards' rows (an entry was lost).
        """
        data = json.loads(path.read_text())
        try:
            shards = tuple(ShardEntry.from_json(s) for s in data["shards"])
            manifest = cls(
                table=data["table"],
                schema_version=data["schema_version"],
                shards=shards,
                metadata={str(k): str(v) for k, v in data["metadata"].items()},
                counts=dict(data.get("counts", {})),
                checksum=data.get("checksum", ""),
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"missing or malformed field {e}") from e
        if len(manifest.entries()) != len(shards):
            raise ValueError("a shard is listed twice")
        if data.get("rows") != manifest.rows:
            raise ValueError(
                f"it says {data.get('rows')} rows but its shards hold {manifest.rows} (an entry "
                f"was lost or edited)"
            )
        return manifest

    def write(self, directory: Path) -> None:
        """Write ``_manifest.json`` atomically (temporary file, fsync, rename)."""
        write_atomically(directory / MANIFEST_NAME, self.to_json())


class ResumeRecord:
    """The checksums of a table's shards while it has no manifest (``_checksums.jsonl``).

    A writer's first shard replaces the manifest (the table is incomplete from then on); the
    checksums of the shards it keeps go here first, and each new shard's entry is appended before
    the shard is renamed into place. So a shard damaged after it was written is caught by whichever
    run finalizes the table, even when the runs in between failed or were killed. The first line
    holds the writer's metadata: entries count only for a run with the same resume keys.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / RESUME_RECORD_NAME

    def read(self, metadata: Mapping[str, str], keys: tuple[str, ...]) -> dict[str, ShardEntry]:
        try:
            lines = self.path.read_text().splitlines()
            header = json.loads(lines[0])["metadata"]
            if any(header.get(k) != metadata.get(k) for k in keys):
                return {}
            entries = [ShardEntry.from_json(json.loads(line)) for line in lines[1:] if line]
        except (OSError, IndexError, ValueError, KeyError, TypeError):
            return {}  # none, or cut short by a kill mid-line: unrecorded shards are redone
        return {e.name: e for e in entries}

    def start(self, metadata: Mapping[str, str], entries: Iterable[ShardEntry]) -> None:
        lines = [json.dumps({"metadata": dict(metadata)})]
        lines += [json.dumps(e.as_json()) for e in entries]
        write_atomically(self.path, "\n".join(lines) + "\n")

    def add(self, entry: ShardEntry) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(entry.as_json()) + "\n")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def recorded_shards(
    directory: Path, metadata: Mapping[str, str], keys: tuple[str, ...]
) -> dict[str, ShardEntry]:
    """Every shard entry an earlier run recorded under ``keys`` equal to ``metadata``'s: the
    manifest's, then the resume record's (the later entry wins). A shard on disk that has none is
    of unknown origin and must not be resumed."""
    recorded: dict[str, ShardEntry] = {}
    try:
        manifest = Manifest.read(directory / MANIFEST_NAME)
        if all(manifest.metadata.get(k) == metadata.get(k) for k in keys):
            recorded = manifest.entries()
    except (OSError, ValueError):
        pass  # no manifest, or one from another format: nothing to hold shards to
    return {**recorded, **ResumeRecord(directory).read(metadata, keys)}


def file_damage(
    path: Path, size: int, checksum: str, content: bool, record: str = "the manifest"
) -> str | None:
    """What differs between a file and the ``size`` and ``checksum`` its ``record`` holds, or
    None.

    The size costs a ``stat``; ``content`` also compares the checksum (one read of the file, or a
    ``stat`` when it was checksummed before and has not changed since).
    """
    if not path.is_file():
        return f"listed in {record} but missing"
    actual_size = path.stat().st_size
    if actual_size != size:
        return (
            f"{actual_size} bytes, {record} says {size} (truncated or changed after it was written)"
        )
    if content:
        actual = file_checksum(path)
        if actual != checksum:
            return (
                f"content checksum {actual}, {record} says {checksum} (damaged or changed after "
                f"it was written)"
            )
    return None


def require_own_table(directory: Path, producer: str | None) -> None:
    """Refuse to write into a folder that holds another stage's table: resuming would delete its
    shards as stale (an output path set to a stage's own input, or to another table's folder).

    Raises:
        ConfigError: naming the folder, the table it holds and the stage that would replace it.
    """
    try:
        theirs = Manifest.read(directory / MANIFEST_NAME).metadata.get("producer")
    except (OSError, ValueError):
        theirs = None
    for path in [] if theirs else sorted(directory.glob("*.parquet"))[:1]:
        try:
            footer = pq.read_schema(path).metadata or {}
        except (pa.ArrowInvalid, OSError):
            continue  # unreadable: a stale shard of whatever table, replaced like any other
        theirs = footer.get(b"producer", b"").decode() or None
    if theirs and producer and theirs != producer:
        raise ConfigError(
            f"{directory} holds the {theirs!r} table; writing the {producer!r} table there would "
            f"delete it: give the {producer!r} stage its own output_dir"
        )


def stale_reason(
    path: Path, listed: ShardEntry | None, metadata: Mapping[str, str], keys: tuple[str, ...]
) -> str | None:
    """Why a shard on disk must not be resumed (None: it may): no recorded entry (a shard of
    unknown origin), another size than its entry, an unreadable footer, or footer ``keys`` that
    differ from ``metadata``."""
    if listed is None:
        return "no checksum recorded for it by this table's writer"
    damage = file_damage(path, listed.bytes, listed.checksum, content=False)
    if damage:
        return damage
    try:
        found = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError) as e:
        return f"unreadable ({e})"
    for key in keys:
        ours = metadata.get(key)
        theirs = found.get(key.encode(), b"").decode() or None
        if ours != theirs:
            return f"written with {key}={theirs}, this run has {ours}"
    return None


FOLDER_RECORD_NAME = "checksums.json"  # a published folder's record of its files


def record_folder(folder: Path, suffixes: tuple[str, ...]) -> None:
    """Write ``checksums.json`` in ``folder``: the size and checksum of each file under it whose
    name ends with one of ``suffixes`` (the files a consumer loads: data, weights, config), so
    whoever loads the folder later can tell it is what its writer wrote (``verify_folder``)."""
    files = {
        path.relative_to(folder).as_posix(): {
            "bytes": path.stat().st_size,
            "checksum": file_checksum(path),
        }
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name.endswith(suffixes) and path.name != FOLDER_RECORD_NAME
    }
    text = json.dumps({"checksum": CHECKSUM_ALGORITHM, "files": files}, indent=1) + "\n"
    write_atomically(folder / FOLDER_RECORD_NAME, text)


def verify_folder(folder: Path, fix: str) -> bool:
    """Check every file ``checksums.json`` lists in ``folder`` (size, then content) and that no
    file of a listed kind was added; False when the folder has no record (made by another tool).

    Raises:
        StageInputError: naming the first file that is missing, added or changed, and ``fix``.
    """
    record_path = folder / FOLDER_RECORD_NAME
    if not record_path.is_file():
        return False
    try:
        record = json.loads(record_path.read_text())
        listed = {name: (e["bytes"], e["checksum"]) for name, e in record["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise StageInputError(f"{record_path}: not a readable checksum record ({e}); {fix}") from e
    for name, (size, checksum) in listed.items():
        path = folder / name
        if ".." in Path(name).parts:
            raise StageInputError(f"{record_path}: lists {name!r}, outside the folder; {fix}")
        damage = file_damage(path, size, checksum, content=True, record=FOLDER_RECORD_NAME)
        if damage:
            raise StageInputError(f"{path}: {damage}; {fix}")
    kinds = {Path(name).suffix for name in listed}
    added = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix in kinds
        and path.relative_to(folder).as_posix() not in listed
        and not path.name.startswith(".")
        and path.name != FOLDER_RECORD_NAME
    )
    if added:
        raise StageInputError(f"{folder}: {added[:3]} not in its {FOLDER_RECORD_NAME}; {fix}")
    return True


def require_replaceable(folder: Path, marker: str, key: str) -> None:
    """Refuse to delete ``folder`` unless it is absent, empty, or an earlier output of the same
    writer (it holds ``marker``): a mistyped output path must never delete other work (``data``
    instead of ``data/dataset``, or a folder the run reads from).

    Raises:
        ConfigError: naming ``key`` and the folder.
    """
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise ConfigError(
            f"{key}={folder} is a symlink or a file, not an output folder; point {key} at a new "
            f"folder"
        )
    if folder.is_dir() and any(folder.iterdir()) and not (folder / marker).is_file():
        raise ConfigError(
            f"{key}={folder} holds files this command did not write (no {marker}) and would be "
            f"deleted; point {key} at a new or earlier output folder, or empty it yourself"
        )


def clear_staging(folder: Path) -> None:
    """Remove a leftover staging folder; a symlink is removed itself, never followed (writing
    through it would put the output outside the project)."""
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: temporary file, fsync, rename."""
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _cache_file() -> Path:
    folder = os.environ.get(_CACHE_ENV) or Path.home() / ".cache" / "tracefactory"
    return Path(folder) / "file-checksums.json"


def _disk_cache() -> dict[str, tuple[list[int], str]]:
    try:
        return json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}  # no cache yet, or a damaged one: hashing again is always correct


def _save_to_disk_cache(key: str, identity: list[int], digest: str) -> None:
    """Best effort: a cache that cannot be written only costs a rehash next time."""
    cache_file = _cache_file()
    try:
        cache = {k: v for k, v in _disk_cache().items() if os.path.exists(k)}  # drop deleted
        cache[key] = (identity, digest)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_file)
    except OSError as e:
        logger.debug("checksum cache %s not written: %s", cache_file, e)


class TableLock:
    """An exclusive lock on one table folder, held by the writer for its whole run.

    The lock file sits beside the folder (``.<name>.lock``), not in it, so the table's content (what
    DVC hashes) never includes it; a sidecar ``.<name>.lock.json`` names the holder (pid, host,
    command). The operating system releases the lock when its process dies, so a killed run never
    leaves a table locked.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        real = directory.resolve()  # every spelling of a folder (./x, x/, a symlink) shares a lock
        self.path = real.with_name(f".{real.name}.lock")
        self.holder_path = real.with_name(f".{real.name}.lock.json")
        self._lock = FileLock(self.path, timeout=0)

    def acquire(self) -> None:
        """Take the lock or fail at once.

        Raises:
            TableLockedError: another process (named) is writing this table.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise TableLockedError(
                f"{self.directory} is being written by another run ({self._holder()}); wait for it "
                f"to finish or stop it, then rerun (one writer per table)"
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": shlex.join(sys.argv),
        }
        self.holder_path.write_text(json.dumps(holder))

    def __enter__(self) -> TableLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def release(self) -> None:
        if self._lock.is_locked:
            self.holder_path.unlink(missing_ok=True)
            self._lock.release()

    def _holder(self) -> str:
        try:
            holder = json.loads(self.holder_path.read_text())
            return f"pid {holder['pid']} on {holder['host']}: {holder['command']}"
        except (OSError, ValueError, KeyError):
            return "holder unknown"
