"""Draws the cost curve of ``bench_scale.py --out FILE``: per-stage wall time and peak RSS
against the fraction of the paper, log-log.

The left panel has a slope-1 reference (wall time linear in the work) through each stage's
smallest fraction, so a stage whose line climbs steeper than its dashed reference grows faster
than its work. The right panel has the peak RSS of the driver (solid) and of the largest Ray
worker (dotted) per stage; flat is the goal.

Run: python benchmarks/plot_scale.py scale.json docs/figures/scale.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the file-only backend

# problems (seconds, Ray-free, mostly the CLI's start) is left out: it is not part of the curve.
STAGES = ("rollin", "rollout", "verify", "label", "dataset")


def plot(results: dict[str, dict], out: Path) -> None:
    fractions = sorted(results, key=float)
    x = [float(f) for f in fractions]
    figure, (wall_axes, rss_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, stage in enumerate(STAGES):
        color = f"C{index}"
        walls = [results[f]["stages"][stage]["wall_s"] for f in fractions]
        wall_axes.plot(x, walls, "o-", color=color, label=stage)
        wall_axes.plot(x, [walls[0] * v / x[0] for v in x], "--", color=color, alpha=0.4)
        driver = [results[f]["stages"][stage]["peak_rss_mb"] for f in fractions]
        rss_axes.plot(x, driver, "o-", color=color, label=f"{stage} driver")
        worker = [results[f]["stages"][stage]["worker_peak_rss_mb"] for f in fractions]
        if any(worker):
            rss_axes.plot(x, worker, "s:", color=color, label=f"{stage} worker")
    for axes in (wall_axes, rss_axes):
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xticks(x, [f"{v:g}" for v in x])
        axes.minorticks_off()
        axes.set_xlabel("fraction of the paper's run")
        axes.grid(True, which="major", alpha=0.3)
    wall_axes.set_ylabel("wall time (s)")
    wall_axes.set_title("wall time per stage (dashed: linear in the work)")
    wall_axes.legend(fontsize=8)
    rss_axes.set_ylim(100, 4000)  # a decade and more either side: a flat line reads as flat
    rss_axes.set_ylabel("peak RSS (MB)")
    rss_axes.set_title("peak RSS per stage (flat is the goal)")
    rss_axes.legend(fontsize=7, ncol=3, loc="lower center")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("measurements", type=Path, help="the JSON of bench_scale.py --out")
    parser.add_argument("out", type=Path, help="the PNG to write")
    args = parser.parse_args()
    plot(json.loads(args.measurements.read_text())["fractions"], args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
