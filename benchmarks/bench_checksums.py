"""What verifying shard checksums costs a reader, beside reading the table itself.

A token table of the roll-outs' shape (random token ids, seeded) is written with the real
ShardWriter. Then, in one process on the same (page-cached) files: (a) reading the whole table with
polars, the reference, as a stage's scan does; (b) the xxh3-128 checksums TableReader verifies
(``tracefactory.integrity.file_checksum``, the first time: it then remembers each file's checksum
by identity, so a second check of an unchanged file is a ``stat``); (c) sha256 of the same bytes,
the alternative. The ratios say what verification adds to a read, and why xxh3 rather than
sha256.

Run: .venv/bin/python benchmarks/bench_checksums.py [--rows 40000] [--mean-tokens 600]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from tracefactory.integrity import file_checksum
from tracefactory.io import ShardWriter, TableReader

SHARDS = 4


def make_table(root: Path, rows: int, mean_tokens: int) -> Path:
    """A finished rollouts-shaped table of ``rows`` roll-outs of ~``mean_tokens`` tokens."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(mean_tokens // 2, mean_tokens * 3 // 2, size=rows)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    tokens = rng.integers(3, 150_000, size=int(offsets[-1]), dtype=np.int32)
    ids = [f"r{i:08d}" for i in range(rows)]
    table = pa.table(
        {
            "rollout_id": ids,
            "rollin_id": ids,
            "problem_id": [f"p{i // 56:06d}" for i in range(rows)],
            "policy": ["bench"] * rows,
            "cut_index": pa.array(np.zeros(rows), pa.int32()),
            "cut_position": pa.array(np.zeros(rows), pa.int32()),
            "sample_index": pa.array(np.zeros(rows), pa.int32()),
            "seed": pa.array(np.arange(rows), pa.int64()),
            "token_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(tokens)),
            "finish_reason": ["stop"] * rows,
        }
    )
    meta = {"producer": "bench", "params_hash": "bench", "tokenizer": "b", "tokenizer_hash": "b"}
    directory = root / "rollouts"
    with ShardWriter(directory, "rollouts", meta) as writer:
        step = -(-rows // SHARDS)
        for i in range(SHARDS):
            writer.write(f"part-{i}", table.slice(i * step, step))
        writer.finalize()
    return directory


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--mean-tokens", type=int, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = make_table(Path(scratch), args.rows, args.mean_tokens)
        paths = TableReader(directory).paths
        size = sum(p.stat().st_size for p in paths)
        read = min(_timed(lambda: pl.scan_parquet(paths).collect()) for _ in range(3))
        xxh3 = _timed(lambda: [file_checksum(p) for p in paths])  # once: it is remembered
        again = _timed(lambda: [file_checksum(p) for p in paths])  # by identity: a stat each
        sha = min(_timed(lambda: [_sha256(p) for p in paths]) for _ in range(3))
    mb = size / 1e6
    print(f"table: {args.rows} roll-outs, {mb:.0f} MB on disk in {SHARDS} shards (page-cached)")
    print(f"read with polars (reference): {read:.3f} s ({mb / read:.0f} MB/s)")
    print(f"xxh3-128 checksums: {xxh3:.3f} s ({mb / xxh3:.0f} MB/s) = {xxh3 / read:.2f}x the read")
    print(f"xxh3-128 again (unchanged files, remembered): {again * 1e3:.2f} ms")
    print(f"sha256 checksums:   {sha:.3f} s ({mb / sha:.0f} MB/s) = {sha / read:.2f}x the read")
    print(f"xxh3 is {sha / xxh3:.1f}x faster than sha256")


if __name__ == "__main__":
    main()
