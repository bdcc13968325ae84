"""The value-model trainer's data path at paper row sizes: one epoch of micro-batches, no model.

Run: python benchmarks/bench_trainer_data.py DATASET [DATASET ...] [--workdir DIR]

Each DATASET is an exported dataset folder (``data/dataset`` of a ``pipelines/scale-sim.yaml``
run, e.g. kept by ``bench_scale.py --keep``), smallest first. For each, in fresh processes, what
``recipes/train_value_model.py`` does before the model sees a batch, with the paper's settings
(``max_length`` 16,384, 1,024 rows a step, the ``official`` sampler):

1. ``open_dataset`` with an empty ``datasets`` cache: the Parquet files converted once into the
   memory-mapped Arrow copy, then the per-row scalars scanned (``valuemodel/dataset.py``);
2. in a second process, ``open_dataset`` again (the cache served), then every step of one epoch:
   the sampler's rows, ``micro_batches`` (length-grouped, ``--micro-batch-tokens`` padded tokens
   each) and ``DatasetSplit.batch`` of each (the padded int64 tensors a forward pass takes).

It prints wall times, rows/s and tokens/s (roll-out and context tokens, unpadded) of the epoch,
and the peak memory of the epoch's process: ``ru_maxrss``, which counts the mapped Arrow pages
the epoch reads (page cache: shared, reclaimable, and necessarily growing with the data an epoch
reads), and the peak of anonymous memory (what the process itself holds, sampled every 10 ms),
which must stay flat; then the ratios between consecutive datasets beside their rows' ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_value_memory import PeakAnonymousMemory  # benchmarks/ is the script's folder

ROOT = Path(__file__).resolve().parents[1]


def child(spec: dict) -> dict:
    """Open the dataset (converting it if the cache is empty) and, unless ``prepare``, read one
    epoch of micro-batches; returns the measurements."""
    import numpy as np

    from tracefactory.valuemodel.batching import micro_batches, step_sampler
    from tracefactory.valuemodel.config import Sampler
    from tracefactory.valuemodel.dataset import open_dataset

    anonymous = PeakAnonymousMemory()
    started = time.perf_counter()
    train, _, stats, _ = open_dataset(
        spec["dataset"], "default", None, spec["max_length"], (1, 0), spec["cache"]
    )
    out = {"open_s": time.perf_counter() - started, "rows": train.num_rows}
    if not spec["prepare"]:
        sampler = step_sampler(Sampler.OFFICIAL, train.problem_id, spec["batch_size"], 0)
        steps = max(1, math.ceil(sampler.steps_per_epoch))
        started = time.perf_counter()
        rows = tokens = padded = micro = 0
        for step in range(steps):
            for micro_rows in micro_batches(
                sampler.rows(step), train.lengths, spec["micro_batch_tokens"]
            ):
                batch = train.batch(micro_rows)
                rows += len(micro_rows)
                tokens += int(batch["attention_mask"].sum())
                padded += batch["input_ids"].numel()
                micro += 1
        epoch = time.perf_counter() - started
        out |= {
            "steps": steps,
            "micro_batches": micro,
            "epoch_rows": rows,
            "epoch_tokens": tokens,
            "padded_tokens": padded,
            "epoch_s": epoch,
            "rows_per_s": rows / epoch,
            "tokens_per_s": tokens / epoch,
            "row_tokens_mean": float(np.mean(train.lengths)),
        }
    out |= {
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_anonymous_mib": anonymous.stop(),
    }
    return out


def run_child(spec: dict) -> dict:
    argv = [sys.executable, __file__, "--child", json.dumps(spec)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", type=Path, nargs="*", help="dataset folders, smallest first")
    parser.add_argument("--max-length", type=int, default=16_384)
    parser.add_argument("--batch-size", type=int, default=1_024)
    parser.add_argument("--micro-batch-tokens", type=int, default=16_384)
    parser.add_argument("--workdir", type=Path, help="for the datasets cache (else a temp)")
    parser.add_argument("--out", type=Path, help="write the measurements as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(json.loads(args.child))))
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-trainer-data-"))
    results = {}
    try:
        for dataset in args.datasets:
            cache = work / "hf_cache"
            spec = {
                "dataset": str(dataset.resolve()),
                "cache": str(cache),
                "max_length": args.max_length,
                "batch_size": args.batch_size,
                "micro_batch_tokens": args.micro_batch_tokens,
                "prepare": True,
            }
            converted = run_child(spec)
            result = run_child(spec | {"prepare": False})
            result["convert_s"] = converted["open_s"]
            result["convert_peak_anonymous_mib"] = converted["peak_anonymous_mib"]
            results[str(dataset)] = result
            print(
                f"{dataset}: {result['rows']:,} train rows (mean {result['row_tokens_mean']:,.0f}"
                f" tokens); convert {result['convert_s']:.1f} s (peak anonymous "
                f"{converted['peak_anonymous_mib']:.0f} MiB), open {result['open_s']:.1f} s; "
                f"epoch of {result['steps']} steps, {result['micro_batches']:,} micro-batches: "
                f"{result['epoch_s']:.1f} s, {result['rows_per_s']:,.0f} rows/s, "
                f"{result['tokens_per_s'] / 1e6:,.2f}M tokens/s (padding "
                f"{result['padded_tokens'] / result['epoch_tokens'] - 1:.1%}); peak RSS "
                f"{result['peak_rss_mib']:.0f} MiB, peak anonymous "
                f"{result['peak_anonymous_mib']:.0f} MiB",
                flush=True,
            )
            shutil.rmtree(cache)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    keys = list(results)
    for low, high in zip(keys, keys[1:], strict=False):
        a, b = results[low], results[high]
        print(f"\nratios {high} / {low} (rows x{b['rows'] / a['rows']:.2f}):")
        for key in ("convert_s", "open_s", "epoch_s", "peak_rss_mib", "peak_anonymous_mib"):
            print(f"  {key}: x{b[key] / a[key]:.2f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
