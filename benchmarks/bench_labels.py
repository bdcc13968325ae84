"""Label-stage throughput (labelled tokens/s) beside a plain pyarrow write of the same final table,
and the size on disk of the per-token labels next to the token ids.

The inputs are synthetic tables of the real schemas (random token ids, seeded), written with the
real ShardWriter; the stage is the real LabelStage run in this process. The floor is
``pq.write_table`` of the finished labels table (already in memory, zstd): what writing the result
costs without any joining, so the ratio says how much the joins and group-bys add. The two are
timed alternately, ``--repeat`` times each, and the best time of each side is compared: a burst of
load from other jobs on a shared machine then inflates neither side alone (each run's own ratio is
printed too). CPU time (every thread of the process) is printed beside it: the work each side
does, which load from other jobs barely moves; the stage's wall time can be below it because the
writer stores one shard while the next is built.

Run: .venv/bin/python benchmarks/bench_labels.py [--problems 400] [--rollin-tokens 1500]
     [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute below
import pyarrow.parquet as pq

from tracefactory.io import ShardWriter, TableReader
from tracefactory.labels.config import LabelConfig
from tracefactory.labels.stage import LabelStage
from tracefactory.stage import run_stage

TOKENIZER = {"tokenizer": "bench", "tokenizer_hash": "bench"}


def _lists(rng: np.random.Generator, lengths: np.ndarray) -> pa.ListArray:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = rng.integers(3, 150_000, size=int(offsets[-1]), dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def _write(root: Path, name: str, table: pa.Table, tokens: bool) -> None:
    meta = {"producer": name, "params_hash": "bench", **(TOKENIZER if tokens else {})}
    writer = ShardWriter(root / name, name, meta)
    step = max(1, table.num_rows // 4)
    for i, start in enumerate(range(0, table.num_rows, step)):
        writer.write(f"part-{i}", table.slice(start, step))
    writer.finalize()


def make_tables(root: Path, problems: int, rollins: int, cuts: int, samples: int, mean: int):
    """Synthetic inputs: ``problems`` x ``rollins`` roll-ins of ~``mean`` tokens, c x m roll-outs
    each."""
    rng = np.random.default_rng(0)
    pids = [f"p{i:06d}" for i in range(problems)]
    _write(
        root,
        "problems",
        pa.table(
            {
                "problem_id": pids,
                "source": ["bench"] * problems,
                "problem": pids,
                "answer": ["1"] * problems,
                "split": ["train"] * problems,
            }
        ),
        False,
    )
    rollin_pid = np.repeat(pids, rollins)
    rollin_ids = [f"{p}-r{i % rollins}" for i, p in enumerate(rollin_pid)]
    rollin_len = rng.integers(mean // 4, 2 * mean, size=len(rollin_ids))
    n_in = len(rollin_ids)
    _write(
        root,
        "rollins",
        pa.table(
            {
                "rollin_id": rollin_ids,
                "problem_id": rollin_pid,
                "policy": ["pool"] * n_in,
                "sample_index": np.zeros(n_in, np.int32),
                "seed": np.zeros(n_in, np.int64),
                "prompt_ids": _lists(rng, np.full(n_in, 80)),
                "token_ids": _lists(rng, rollin_len),
                "finish_reason": ["stop"] * n_in,
            }
        ),
        True,
    )
    per = cuts * samples
    idx = np.repeat(np.arange(n_in), per)
    cut_pos = (rng.random(len(idx)) * rollin_len[idx]).astype(np.int32)
    out_ids = [
        f"{rollin_ids[i]}-{k}" for i, k in zip(idx, np.tile(np.arange(per), n_in), strict=True)
    ]
    n_out = len(out_ids)
    _write(
        root,
        "rollouts",
        pa.table(
            {
                "rollout_id": out_ids,
                "rollin_id": [rollin_ids[i] for i in idx],
                "problem_id": rollin_pid[idx],
                "policy": ["roller"] * n_out,
                "cut_index": np.tile(np.repeat(np.arange(cuts), samples), n_in).astype(np.int32),
                "cut_position": cut_pos,
                "sample_index": np.zeros(n_out, np.int32),
                "seed": np.zeros(n_out, np.int64),
                "token_ids": _lists(rng, rng.integers(mean // 4, mean, size=n_out)),
                "finish_reason": ["stop"] * n_out,
            }
        ),
        True,
    )
    labels = rng.choice(np.array([0, 1, 2], np.int8), size=n_out, p=[0.4, 0.45, 0.15])
    _write(
        root,
        "verdicts",
        pa.table(
            {
                "trace_id": out_ids,
                "trace_table": ["rollouts"] * n_out,
                "problem_id": rollin_pid[idx],
                "label": labels,
                "reason": ["match"] * n_out,
                "answer": pa.nulls(n_out, pa.string()),
                "grader_version": ["1"] * n_out,
            }
        ),
        False,
    )


def column_bytes(path: Path, column: str) -> int:
    """Compressed bytes of one column across a Parquet file's row groups."""
    meta = pq.ParquetFile(path).metadata
    total = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            if group.column(c).path_in_schema.split(".")[0] == column:
                total += group.column(c).total_compressed_size
    return total


def timed(run, *args, **kwargs):
    """``run(...)``'s result, wall seconds and CPU seconds (every thread of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = run(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=400)
    parser.add_argument("--rollins", type=int, default=4)
    parser.add_argument("--cuts", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--problems-per-shard", type=int, default=100)
    parser.add_argument("--rollin-tokens", type=int, default=1500, help="mean roll-in length")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tables(root, args.problems, args.rollins, args.cuts, args.samples, args.rollin_tokens)
        config = LabelConfig(
            **{f"{t}_dir": str(root / t) for t in ("problems", "rollins", "rollouts", "verdicts")},
            output_dir=str(root / "labels"),
            problems_per_shard=args.problems_per_shard,
        )
        label_runs, floor_runs = [], []
        for _ in range(args.repeat):
            shutil.rmtree(root / "labels", ignore_errors=True)  # a fresh table: nothing skipped
            summary, *times = timed(lambda: run_stage(LabelStage(config), config.output_dir))
            label_runs.append(times)
            table = TableReader(root / "labels").read()
            floor = root / "floor.parquet"
            _, *times = timed(pq.write_table, table, floor, compression="zstd")
            floor_runs.append(times)
        (label_s, label_cpu), (floor_s, floor_cpu) = (
            [min(t[i] for t in runs) for i in (0, 1)] for runs in (label_runs, floor_runs)
        )
        tokens = summary.stats["tokens"]
        lengths = pa.compute.list_value_length(table.column("input_ids"))
        total_ids = int(pa.compute.sum(lengths).as_py())
        labels_b = column_bytes(root / "floor.parquet", "token_labels")
        ids_b = column_bytes(root / "floor.parquet", "input_ids")
    print(f"rows {summary.rows:,}  labelled tokens {tokens:,}  input tokens {total_ids:,}")
    print(f"label stage    {label_s:7.3f} s  {tokens / label_s:12,.0f} labelled tokens/s")
    print(f"pyarrow write  {floor_s:7.3f} s  {tokens / floor_s:12,.0f} labelled tokens/s (floor)")
    print(f"ratio label stage / plain write: {label_s / floor_s:.2f}x (best of {args.repeat} each)")
    each = "  ".join(f"{a[0] / b[0]:.2f}x" for a, b in zip(label_runs, floor_runs, strict=True))
    print(f"each run's ratio: {each}")
    print(
        f"cpu time, every thread: label stage {label_cpu:.3f} s, pyarrow write {floor_cpu:.3f} s: "
        f"{label_cpu / floor_cpu:.2f}x"
    )
    print(
        f"on disk (zstd): token_labels {labels_b:,} B ({labels_b / tokens:.4f} B/labelled token)"
        f" vs input_ids {ids_b:,} B ({ids_b / total_ids:.3f} B/token): "
        f"labels are {100 * labels_b / ids_b:.2f}% of the ids"
    )


if __name__ == "__main__":
    main()
