"""Value-model training memory does not grow with the data: peak RSS of N steps at three sizes.

Run: python benchmarks/bench_value_memory.py [--sizes-gb 0.25 1 4] [--steps 10] [--workdir DIR]

For each size, a dataset folder of the same row shape (1,024-token rows: 256 context tokens, then
the roll-out; random ids and classes) holding that many GB of int32 token ids is written under
``--workdir`` (default: a temporary folder under /tmp, deleted at the end; the 4 GB case needs
~10 GB of disk for the Parquet files plus the Arrow copy ``datasets`` makes). A first process
converts it to the ``datasets`` Arrow cache; a fresh process then trains ``--steps`` optimiser
steps of a tiny Qwen2 on it with the recipe and reports its peak RSS (``ru_maxrss``). The largest
dataset's peak must stay within 1.25x of the smallest's: rows are fetched from the memory-mapped
table, and only per-row scalars (a few bytes a row) are held.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
ROW_TOKENS, CONTEXT_TOKENS, ROWS_PER_FILE, VAL_ROWS = 1024, 256, 16_384, 64


def write_dataset(folder: Path, gigabytes: float) -> int:
    """A default-layout dataset folder: ``gigabytes`` GB of train token ids; returns its rows."""
    from tracefactory.io import SplitFileWriter
    from tracefactory.schemas import load_schema

    rows = int(gigabytes * 1e9 / (4 * ROW_TOKENS))
    schema = load_schema("labels")
    files = SplitFileWriter(folder / "data", schema, {"producer": "bench"}, ROWS_PER_FILE)
    rng = np.random.default_rng(0)
    for split, count in (("validation", VAL_ROWS), ("train", rows)):
        for start in range(0, count, ROWS_PER_FILE):
            files.write(split, _rows(rng, start, min(ROWS_PER_FILE, count - start), split))
    files.close()
    return rows


def _rows(rng: np.random.Generator, start: int, n: int, split: str) -> pa.Table:
    ids = rng.integers(3, 64, size=n * ROW_TOKENS, dtype=np.int32)
    label = rng.integers(0, 3, size=n).astype(np.int8)
    rollout = ROW_TOKENS - CONTEXT_TOKENS
    offsets = np.arange(n + 1, dtype=np.int32)
    strings = [f"{split}-{start + i}" for i in range(n)]
    return pa.table(
        {
            "rollout_id": strings,
            "rollin_id": strings,
            "problem_id": [f"{split}-p{(start + i) // 8}" for i in range(n)],
            "source": ["bench"] * n,
            "rollin_policy": ["bench"] * n,
            "rollout_policy": ["bench"] * n,
            "split": ["train" if split == "train" else "val"] * n,
            "input_ids": pa.ListArray.from_arrays(offsets * ROW_TOKENS, ids),
            "supervised_start": np.full(n, CONTEXT_TOKENS, dtype=np.int32),
            "cut_position": np.full(n, CONTEXT_TOKENS - 8, dtype=np.int32),
            "rollin_length": np.full(n, ROW_TOKENS, dtype=np.int32),
            "label": label,
            "token_labels": pa.ListArray.from_arrays(offsets * rollout, np.repeat(label, rollout)),
            "branch_value": (label == 1).astype(np.float32),
            "branch_count": np.ones(n, dtype=np.int32),
        }
    )


def backbone(folder: Path) -> Path:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=64, max_position_embeddings=4096,
    )  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


def params_file(work: Path, name: str, dataset: Path, init: Path, steps: int) -> Path:
    section = {
        "dataset": str(dataset), "datasets_cache": str(work / "hf_cache"), "init_from": str(init),
        "out_dir": str(work / f"out-{name}"), "checkpoint_dir": str(work / f"ckpt-{name}"),
        "reports_dir": str(work / f"rep-{name}"), "batch_size": 8, "max_steps": steps,
        "eval_every": 0, "checkpoint_every": 0, "max_length": ROW_TOKENS, "warmup_steps": 2,
        "micro_batch_tokens": 4 * ROW_TOKENS, "holdout_problems": 1,
    }  # fmt: skip
    path = work / f"{name}.yaml"
    path.write_text(json.dumps({"train": section}))
    return path


def anonymous_mib() -> float:
    """Anonymous resident memory: what the process owns, without mapped file pages."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakAnonymousMemory:
    """The peak of this process's anonymous memory, sampled every 10 ms by a thread from
    construction until ``stop``."""

    def __init__(self) -> None:
        self.peak_mib = 0.0
        self._done = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self.peak_mib = max(self.peak_mib, anonymous_mib())

    def stop(self) -> float:
        """Stop sampling; the peak seen."""
        self._done.set()
        return self.peak_mib


def child(params: Path, prepare_only: bool) -> None:
    """In a fresh process: convert the dataset (prepare) or train on it; print peak RSS (MiB).

    ``ru_maxrss`` counts the mapped Arrow pages the kernel maps around each page read (fault-
    around: reading a row's length maps its neighbours' token pages too); those are page cache,
    shared and reclaimable. The peak of anonymous memory, sampled every 10 ms, is what the
    process itself holds.
    """
    from tracefactory.recipes import train_value_model
    from tracefactory.valuemodel.dataset import open_dataset

    anonymous = PeakAnonymousMemory()
    if prepare_only:
        section = json.loads(params.read_text())["train"]
        open_dataset(
            section["dataset"], "default", None, ROW_TOKENS, (1, 0), section["datasets_cache"]
        )
    else:
        train_value_model.main(["--params", str(params)])
    peak_anonymous = anonymous.stop()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mib": peak_rss, "peak_anonymous_mib": peak_anonymous}))


def run_child(params: Path, prepare_only: bool) -> dict[str, float]:
    argv = [sys.executable, __file__, "--child", str(params)] + (
        ["--prepare"] if prepare_only else []
    )
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-gb", type=float, nargs="+", default=[0.25, 1.0, 4.0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child, args.prepare)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_value_memory_", dir="/tmp"))
    try:
        init = backbone(work / "policy")
        peaks: dict[str, dict[str, float]] = {}
        for size in args.sizes_gb:
            name = f"{size:g}GB"
            started = time.perf_counter()
            rows = write_dataset(work / f"dataset-{name}", size)
            params = params_file(work, name, work / f"dataset-{name}", init, args.steps)
            run_child(params, prepare_only=True)
            peaks[name] = run_child(params, prepare_only=False)
            print(f"{name}: {rows:,} rows, peak RSS {peaks[name]['peak_rss_mib']:.0f} MiB, "
                  f"peak anonymous {peaks[name]['peak_anonymous_mib']:.0f} MiB "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
            shutil.rmtree(work / f"dataset-{name}")
            shutil.rmtree(work / "hf_cache", ignore_errors=True)
        small, large = peaks[min(peaks, key=float_size)], peaks[max(peaks, key=float_size)]
        ratios = {k: large[k] / small[k] for k in small}
        print(json.dumps({"peaks_mib": peaks, "ratio_largest_to_smallest": ratios}, indent=2))
        for key, ratio in ratios.items():
            verdict = "within" if ratio <= 1.25 else "NOT within"
            print(f"{key}: largest / smallest = {ratio:.3f} ({verdict} the 1.25x goal)")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def float_size(name: str) -> float:
    return float(name.removesuffix("GB"))


if __name__ == "__main__":
    main()
