"""A synthetic labels table with a signal a tiny value model can learn, for tests and benchmarks.

Each problem has a difficulty (its chance that a trace contains a visible "mistake" token). A trace
with a mistake ends wrong (or, sometimes, incomplete); one without ends correct, except for label
noise. So problem difficulty alone predicts a problem's success rate, but only reading the trace
separates its correct traces from its wrong ones: within-problem pairwise accuracy tells which
of the two a model learned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from tracefactory.io import ShardWriter, SplitFileWriter
from tracefactory.schemas import TrajectoryClass, load_schema

VOCAB_SIZE = 64
MISTAKE_TOKEN = 13
_FILLER = np.arange(14, VOCAB_SIZE)


def synthetic_rows(
    num_problems: int,
    rollins_per_problem: int = 2,
    rollouts_per_rollin: int = 4,
    length_range: tuple[int, int] = (10, 60),
    val_fraction: float = 0.2,
    label_noise: float = 0.1,
    seed: int = 0,
) -> list[dict]:
    """Rows of the labels table (schemas/labels.yaml) over a 64-token vocabulary."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(num_problems):
        difficulty = rng.uniform(0.1, 0.7)
        prompt = [1, *rng.integers(2, 12, size=4).tolist()]
        split = "val" if p < round(num_problems * val_fraction) else "train"
        for r in range(rollins_per_problem):
            rollin_length = int(rng.integers(*length_range))
            cut = int(rng.integers(1, rollin_length))
            rollin = rng.choice(_FILLER, size=cut).tolist()
            outcomes = []
            for o in range(rollouts_per_rollin):
                rollout = rng.choice(_FILLER, size=int(rng.integers(*length_range))).tolist()
                mistake = rng.random() < difficulty
                if mistake:
                    rollout.insert(int(rng.integers(0, len(rollout))), MISTAKE_TOKEN)
                label = (2 if rng.random() < 0.1 else 0) if mistake else 1
                if rng.random() < label_noise and label != TrajectoryClass.INCOMPLETE:
                    label = 1 - label
                outcomes.append(label)
                ids = prompt + rollin + rollout
                rows.append(
                    {
                        "rollout_id": f"p{p}-r{r}-o{o}",
                        "rollin_id": f"p{p}-r{r}",
                        "problem_id": f"p{p}",
                        "source": "synthetic",
                        "rollin_policy": "synthetic",
                        "rollout_policy": "synthetic",
                        "split": split,
                        "input_ids": ids,
                        "supervised_start": len(prompt) + len(rollin),
                        "cut_position": cut,
                        "rollin_length": rollin_length,
                        "label": label,
                        "token_labels": [label] * len(rollout),
                        "branch_count": rollouts_per_rollin,
                    }
                )
            for row in rows[-rollouts_per_rollin:]:
                row["branch_value"] = float(
                    np.mean([x == TrajectoryClass.CORRECT for x in outcomes])
                )
    return rows


def write_synthetic_labels(
    directory: str | Path,
    rows: list[dict],
    shard_rows: int = 5000,
    tokenizer_hash: str = "synthetic-64",
) -> Path:
    """Write ``rows`` as a finished labels table (shards + manifest) at ``directory``.

    ``tokenizer_hash`` is recorded as the table's tokenizer (the backbone's, to train on it).
    """
    writer = ShardWriter(
        directory,
        schema="labels",
        metadata={
            "producer": "synthetic",
            "params_hash": "synthetic",
            "tokenizer": "synthetic-64",
            "tokenizer_hash": tokenizer_hash,
        },
    )
    for start in range(0, len(rows), shard_rows):
        writer.write(f"shard-{start // shard_rows:05d}", rows[start : start + shard_rows])
    writer.finalize()
    return Path(directory)


def write_synthetic_dataset(
    folder: str | Path, rows: list[dict], tokenizer_hash: str | None = None
) -> Path:
    """Write ``rows`` as a dataset folder in the default layout (``data/<split>-*.parquet``).

    ``load_dataset(folder)`` finds the train and validation splits by their file names. Without
    ``tokenizer_hash`` the files record no tokenizer (as datasets made by other tools).
    """
    metadata = {"producer": "synthetic"}
    if tokenizer_hash is not None:
        metadata |= {"tokenizer": "synthetic", "tokenizer_hash": tokenizer_hash}
    schema = load_schema("labels")
    files = SplitFileWriter(Path(folder) / "data", schema, metadata, rows_per_file=100_000)
    for split, hub_split in (("train", "train"), ("val", "validation")):
        part = [row for row in rows if row["split"] == split]
        files.write(hub_split, pa.Table.from_pylist(part, schema=schema.arrow))
    files.close()
    return Path(folder)
