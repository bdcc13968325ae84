"""The cost curve: how each stage's wall time, memory and disk grow with the run's size.

Runs ``pipelines/scale-sim.yaml`` (the simulated engine: the paper's trace lengths, no model) at
each ``--fractions`` of the paper's size, problems -> rollin -> rollout -> verify -> label ->
dataset, each fraction in a fresh folder, each stage as the user runs it (``tracefactory
<stage>``, real Ray workers). A fraction f scales the train problems (the paper: 48,394 after its
500 val and 500 test); roll-ins per problem (14), cut points (4) and the 16,384-token cap are the
paper's, so rows and tokens scale with f.

Per stage it prints rows, tokens, wall time, the peak RSS of the driver (the CLI process) and of
the largest Ray worker (sampled every 0.2 s), and the bytes of the stage's output table; then, for
consecutive fractions, each ratio beside the work ratio. Goals: wall ratio <= 1.15 x the work
ratio, peak RSS ratio <= 1.3 for 4x the work (flat). Ray's start (a fixed ~30 s per Ray stage on a
loaded 2-core machine) is part of the wall time, so small fractions understate the slope.

Run: python benchmarks/bench_scale.py --fractions 0.001 0.004 [--out scale.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).parent / "tracefactory"
PAPER_TRAIN_PROBLEMS = 48_394  # 49,394 cleaned problems minus 500 val and 500 test (sec. 3)
STAGES = ("problems", "rollin", "rollout", "verify", "label", "dataset")
TABLES = {
    "problems": "problems",
    "rollin": "rollins",
    "rollout": "rollouts",
    "verify": "verdicts",
    "label": "labels",
    "dataset": "dataset",
}


class PeakRss:
    """Samples the peak RSS of a process (the driver) and of its largest ``ray::`` descendant."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        self.process = psutil.Process(pid)
        self.driver = self.worker = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.driver = max(self.driver, self.process.memory_info().rss)
                children = self.process.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for child in children:
                try:
                    if child.cmdline()[:1] and child.cmdline()[0].startswith("ray::"):
                        self.worker = max(self.worker, child.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def run_fraction(fraction: float, folder: Path) -> dict:
    """Every stage at ``fraction`` of the paper in ``folder``; per-stage measurements."""
    folder.mkdir(parents=True)
    profile = yaml.safe_load((REPO / "pipelines/scale-sim.yaml").read_text())
    train = max(1, round(PAPER_TRAIN_PROBLEMS * fraction))
    profile["problems"]["sources"][0]["counts"]["train"] = train
    (folder / "profile.yaml").write_text(yaml.safe_dump(profile))
    shutil.copy(REPO / "params.yaml", folder / "params.yaml")
    env = {**os.environ, "TRACEFACTORY_LOG_LEVEL": "WARNING", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    subprocess.run([str(CLI), "params", "apply", "profile.yaml"], cwd=folder, env=env, check=True)
    stages = {}
    for stage in STAGES:
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(CLI), stage], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        peak = PeakRss(process.pid)
        output, _ = process.communicate()
        peak.stop()
        wall = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"{stage} failed at fraction {fraction}:\n{output.decode()[-3000:]}")
        summary = json.loads((folder / "reports" / stage / "summary.json").read_text())
        stages[stage] = {
            "rows": summary.get("rows", 0),
            "tokens": summary.get("tokens", 0),
            "wall_s": round(wall, 2),
            "peak_rss_mb": round(peak.driver / 2**20, 1),
            "worker_peak_rss_mb": round(peak.worker / 2**20, 1),
            "disk_bytes": disk_bytes(folder / "data" / TABLES[stage]),
        }
        print(f"  {fraction:g} {stage}: {stages[stage]}", flush=True)
    # Graded tokens: every roll-in and roll-out; the dataset carries the labelled tokens.
    stages["verify"]["tokens"] = stages["rollin"]["tokens"] + stages["rollout"]["tokens"]
    stages["dataset"]["tokens"] = stages["label"]["tokens"]
    return {"train_problems": train, "stages": stages}


def print_table(results: dict[str, dict]) -> None:
    print(
        f"\n{'fraction':>8} {'stage':<9} {'rows':>10} {'tokens':>14} {'wall s':>8} "
        f"{'driver MB':>9} {'worker MB':>9} {'disk MB':>9}"
    )
    for fraction, result in results.items():
        for stage, m in result["stages"].items():
            print(
                f"{fraction:>8} {stage:<9} {m['rows']:>10,} {m['tokens']:>14,} {m['wall_s']:>8.1f} "
                f"{m['peak_rss_mb']:>9.0f} {m['worker_peak_rss_mb']:>9.0f} "
                f"{m['disk_bytes'] / 1e6:>9.1f}"
            )
    keys = list(results)
    for low, high in zip(keys, keys[1:], strict=False):
        work = float(high) / float(low)
        print(f"\nratios {high} / {low} (work x{work:.2f}; goal: wall <= x{1.15 * work:.2f})")
        print(f"{'stage':<9} {'rows':>6} {'wall':>6} {'driver':>7} {'worker':>7} {'disk':>6}")
        for stage in STAGES:
            a, b = results[low]["stages"][stage], results[high]["stages"][stage]

            def ratio(key: str, a=a, b=b) -> str:
                return f"{b[key] / a[key]:.2f}" if a[key] else "-"

            print(
                f"{stage:<9} {ratio('rows'):>6} {ratio('wall_s'):>6} {ratio('peak_rss_mb'):>7} "
                f"{ratio('worker_peak_rss_mb'):>7} {ratio('disk_bytes'):>6}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fractions", type=float, nargs="+", required=True)
    parser.add_argument("--out", type=Path, help="write the measurements as JSON")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (else a temp)")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results = {}
    try:
        for fraction in sorted(args.fractions):
            results[f"{fraction:g}"] = run_fraction(fraction, base / f"f{fraction:g}")
            if args.keep is None:
                shutil.rmtree(base / f"f{fraction:g}")
            if args.out:  # after each fraction: a long run stopped later keeps what it measured
                args.out.write_text(json.dumps({"fractions": results}, indent=2) + "\n")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print_table(results)
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
