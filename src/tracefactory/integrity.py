"""What makes an artifact trustworthy: content checksums of files and one writer per table.

A checksum here is xxh3-128 of a file's bytes, streamed: it detects any change or damage (it is
not meant to resist tampering) and costs about what reading the file costs. Large read-only files
(model weights, source datasets) are hashed once and cached by (path, size, mtime, ctime, inode),
so a rerun's fingerprint is cheap; a replaced or edited file changes ctime and is hashed again.

A table is written by one process at a time: ``TableLock`` holds an exclusive lock beside the
table's folder and records who holds it, so a second writer fails at once, naming the holder.
The writer's other checks live here too: which shards on disk may be resumed (``stale_reason``),
whether a shard still matches its manifest entry (``shard_damage``), and the package versions
recorded with every table.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import sys
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from filelock import FileLock, Timeout

from tracefactory.errors import TableLockedError

logger = logging.getLogger(__name__)

CHECKSUM_ALGORITHM = "xxh3_128"
MANIFEST_NAME = "_manifest.json"  # a table's record of its shards: rows, size, checksum
_CHUNK = 8 << 20  # bytes read per step: large enough to stream at disk speed
_CACHE_ENV = "TRACEFACTORY_CACHE"  # folder of the digest cache (default: ~/.cache/tracefactory)
_memory_cache: dict[str, tuple[list[int], str]] = {}
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


def file_checksum(path: str | Path) -> str:
    """xxh3-128 of the file's bytes, read in chunks (memory stays flat for any size)."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def buffer_checksum(data: bytes | memoryview | pa.Buffer) -> str:
    """``file_checksum`` of bytes in memory (a shard just encoded, before it is written)."""
    return xxhash.xxh3_128(data).hexdigest()


def shard_damage(path: Path, listed: Mapping, content: bool) -> str | None:
    """What differs between a file and its manifest entry (``bytes``, ``checksum``), or None.

    The size costs a ``stat``; ``content`` also compares the checksum (one read of the file).
    """
    if not path.is_file():
        return "listed in the manifest but missing"
    size = path.stat().st_size
    if size != listed["bytes"]:
        return (
            f"{size} bytes, the manifest says {listed['bytes']} (truncated or changed after the "
            f"table was written)"
        )
    if content:
        actual = file_checksum(path)
        if actual != listed["checksum"]:
            return (
                f"content checksum {actual}, the manifest says {listed['checksum']} (damaged or "
                f"changed after the table was written)"
            )
    return None


def listed_shards(
    manifest_path: Path, metadata: Mapping[str, str], keys: tuple[str, ...]
) -> dict[str, dict]:
    """Size and checksum of each shard an existing manifest lists, if its ``keys`` match
    ``metadata`` (the writer's params); otherwise, or without a readable manifest, none."""
    try:
        manifest = json.loads(manifest_path.read_text())
        if any(manifest["metadata"].get(k) != metadata.get(k) for k in keys):
            return {}
        return {
            s["name"]: {"bytes": s["bytes"], "checksum": s["checksum"]} for s in manifest["shards"]
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # no manifest, or one from another format: nothing to hold shards to


def stale_reason(
    path: Path, listed: Mapping | None, metadata: Mapping[str, str], keys: tuple[str, ...]
) -> str | None:
    """Why a shard on disk must not be resumed (None: it may): another size than its manifest
    entry, an unreadable footer, or footer ``keys`` that differ from ``metadata``."""
    damage = listed and shard_damage(path, listed, content=False)
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


def cached_file_checksum(path: str | Path) -> str:
    """``file_checksum``, remembered across runs while the file's identity is unchanged.

    The identity is (size, mtime, ctime, inode): rewriting, replacing or touching the file changes
    one of them, so a cached digest is never reused for other bytes.
    """
    path = Path(path).resolve()
    stat = path.stat()
    identity = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
    key = str(path)
    known = _memory_cache.get(key) or _disk_cache().get(key)
    if known is not None and list(known[0]) == identity:
        _memory_cache[key] = (identity, known[1])
        return known[1]
    digest = file_checksum(path)
    _memory_cache[key] = (identity, digest)
    _save_to_disk_cache(key, identity, digest)
    return digest


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
