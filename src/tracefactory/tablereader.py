"""Reading a finished stage table: only through its manifest, every shard checked against it.

Readers refuse a folder without a manifest (the writer writes it last), so a downstream stage never
reads half a table; each shard's size is checked when the reader opens and its content checksum
whenever it is read. Import ``TableReader`` from ``tracefactory.io``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads

from tracefactory.errors import StageInputError
from tracefactory.integrity import CHECKSUM_ALGORITHM, MANIFEST_NAME, Manifest, file_damage
from tracefactory.schemas import load_schema

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class TableReader:
    """Reads a finished table (one whose manifest exists), streaming where possible.

    Every shard's size is checked against the manifest when the reader opens (a ``stat`` per
    shard), and its content checksum every time the reader reads it (``scan_shard``, ``scan``,
    ``lookup``, ``read``, ``iter_batches``): one extra sequential read of each shard, at memory
    bandwidth for xxh3, small beside what any stage does with the rows; a shard read again costs a
    ``stat`` unless it was replaced in between (``integrity.file_checksum``), so a shard checked
    when a stage plans and swapped before it is read is still caught.

    Raises:
        StageInputError: if the folder or its manifest is missing, the manifest is malformed or
            its row total disagrees with its entries, a Parquet shard in the folder is not listed,
            a listed shard is gone, or a shard's size or checksum is not what the manifest recorded
            (naming the file and the stage to rerun).
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
            self.manifest = Manifest.read(manifest_path)
        except (OSError, ValueError) as e:
            raise StageInputError(
                f"{manifest_path}: not a readable manifest ({e}); rerun the stage that writes "
                f"{self.directory}"
            ) from e
        self.shards = self.manifest.entries()
        producer = self.manifest.metadata.get("producer", "")
        self._fix = (
            f"rerun the {producer!r} stage (`tracefactory {producer}` or `dvc repro {producer}`)"
        )
        if self.manifest.checksum != CHECKSUM_ALGORITHM:
            raise StageInputError(
                f"{manifest_path}: records no {CHECKSUM_ALGORITHM} shard checksums (written by an "
                f"older tracefactory); {self._fix} to rewrite the table"
            )
        self.paths = [self.directory / f"{name}.parquet" for name in self.shards]
        unlisted = sorted(
            p.name
            for p in self.directory.glob("*.parquet")
            if not p.name.startswith((".", "_")) and p.stem not in self.shards
        )
        if unlisted:
            raise StageInputError(
                f"{self.directory}: shard(s) {unlisted[:3]} are in the folder but not in its "
                f"manifest (the manifest lost an entry, or a file was added); delete the folder "
                f"and {self._fix}"
            )
        self._check(self.paths, content=False)

    def _check(self, paths: list[Path], content: bool) -> None:
        """Check shards against the manifest: sizes, and with ``content`` checksums."""
        for path in paths:
            entry = self.shards[path.stem]
            damage = file_damage(path, entry.bytes, entry.checksum, content)
            if damage:
                raise StageInputError(f"{path}: {damage}; delete it and {self._fix}")

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.manifest.metadata)

    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer this table's token ids were written with: loaded from the recorded
        ``tokenizer`` (a path or Hub id) and held to the recorded ``tokenizer_hash``, so ids are
        never decoded with whatever tokenizer is now at that path.

        Raises:
            StageInputError: the table records no tokenizer, or the one there now differs.
        """
        from tracefactory.models import load_tokenizer, tokenizer_hash

        name, expected = self.metadata.get("tokenizer"), self.metadata.get("tokenizer_hash")
        if not name or not expected:
            raise StageInputError(f"{self.directory}: its manifest records no tokenizer")
        tokenizer = load_tokenizer(name)
        actual = tokenizer_hash(tokenizer)
        if actual != expected:
            raise StageInputError(
                f"{self.directory} was written with tokenizer hash {expected[:12]}..., but the "
                f"tokenizer now at {name!r} has hash {actual[:12]}...; restore that tokenizer, or "
                f"rerun the stages from rollin with the new one"
            )
        return tokenizer

    @property
    def fingerprint(self) -> str:
        """Short hash of this table's content: every shard's name, rows, size and checksum (the
        bytes include the footer's params hash). A downstream stage puts it in its own params
        hash, so its resumable shards are replaced when its input's content changed, wherever the
        input lives."""
        shards = [[s.name, s.rows, s.bytes, s.checksum] for s in self.shards.values()]
        identity = [self.manifest.table, self.manifest.checksum, shards]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]

    @property
    def num_rows(self) -> int:
        return self.manifest.rows

    def scan(self) -> pl.LazyFrame:
        """A lazy frame over every shard; filters and projections reach the Parquet scan."""
        if not self.paths:
            schema = load_schema(self.manifest.table).arrow
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
            return load_schema(self.manifest.table).arrow.empty_table()
        self._check(self.paths, content=True)
        return pads.dataset(self.paths, format="parquet").to_table(columns=columns)
