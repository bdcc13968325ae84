"""Wall time of the evaluate stage in one process against ``evaluate.workers`` Ray actors.

Run (from a finished run's folder, or name its problems table and value model):
    python benchmarks/bench_evaluate_workers.py [--problems data/problems]
        [--value-model models/value_model] [--max-problems 100] [--workers 2]

Both ways run the same shards of the embedded default's evaluation (params.yaml's ``evaluate``
section, on the first ``--max-problems`` test problems) into fresh folders, one after the other in
this process, check that the two sample tables hold the same rows, and print each wall time and
the ratio. Ray's start is counted in the workers' time, as a run pays it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

from tracefactory.io import TableReader
from tracefactory.params import load_params
from tracefactory.recipes import evaluate_search


def rows_digest(folder: Path) -> str:
    frame = TableReader(folder).read().to_pylist()
    text = json.dumps(sorted(frame, key=lambda r: r["sample_id"]), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--problems", default="data/problems")
    parser.add_argument("--value-model", default="models/value_model")
    parser.add_argument("--max-problems", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    params = load_params(Path(args.params), [])
    out = Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    walls, digests = {}, {}
    for name, workers in (("one process", None), (f"{args.workers} Ray workers", args.workers)):
        folder = out / name.replace(" ", "-")
        config = params.evaluate.model_copy(
            update={
                "problems_dir": args.problems,
                "value_model": args.value_model,
                "max_problems": args.max_problems,
                "samples_dir": str(folder / "samples"),
                "output_dir": str(folder / "reports"),
                "use_ray": workers is not None,
                "workers": params.evaluate.workers.model_copy(update={"count": workers or 1}),
            }
        )
        ray_config = params.ray if workers is not None else None
        started = time.perf_counter()
        evaluate_search.evaluate(config, params.seed, ray_config)
        walls[name] = time.perf_counter() - started
        digests[name] = rows_digest(folder / "samples")
        print(f"{name}: {walls[name]:.1f} s, rows digest {digests[name]}", flush=True)
    one, many = walls.values()
    print(f"ratio one process / workers: {one / many:.2f}x")
    if len(set(digests.values())) != 1:
        raise SystemExit("the two sample tables differ")


if __name__ == "__main__":
    main()
