"""Small problems / rollins / rollouts / verdicts tables written with the real ShardWriter.

Shared by tests/labels and tests/dataset (importable because tests/conftest.py puts tests/ on
sys.path). The shapes follow the contracts in schemas/; the numbers are small and seeded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from tracefactory.dataset.config import DatasetConfig
from tracefactory.io import ShardWriter
from tracefactory.labels.config import LabelConfig
from tracefactory.models import load_tokenizer, tokenizer_hash

# The shipped tiny tokenizer's real hash: readers decode ids only with the tokenizer it names.
TOKENIZER = {
    "tokenizer": "tracefactory:tiny",
    "tokenizer_hash": tokenizer_hash(load_tokenizer("tracefactory:tiny")),
}


@dataclass
class TableSpec:
    """What to generate: sizes, and which problems never succeed."""

    problems: int = 6
    rollins_per_problem: int = 3
    cuts_per_rollin: int = 2
    samples_per_cut: int = 2
    hopeless: set[int] = field(default_factory=lambda: {0})  # problem indexes with no success
    success_rate: float = 0.5
    problem_splits: dict[int, str] = field(default_factory=dict)  # index -> problems split
    ungraded: int = 0  # roll-outs left without a verdict
    errored: int = 0  # roll-outs (first ones) whose grading crashed: reason error, null label
    seed: int = 0


def _meta(producer: str, tokens: bool) -> dict[str, str]:
    meta = {"producer": producer, "params_hash": "test"}
    return {**meta, **TOKENIZER} if tokens else meta


def _ids(rng: random.Random, low: int, high: int) -> list[int]:
    return [rng.randrange(3, 300) for _ in range(rng.randint(low, high))]


def write_tables(root: Path, spec: TableSpec | None = None) -> dict[str, Path]:
    """Write the four input tables under ``root`` and return their folders by name."""
    spec = spec or TableSpec()
    rng = random.Random(spec.seed)
    problems, rollins, rollouts, verdicts = [], [], [], []
    for p in range(spec.problems):
        pid = f"p{p:03d}"
        source = "synthetic" if p % 2 else "olympiad"
        split = spec.problem_splits.get(p, "train")
        problems.append(
            dict(problem_id=pid, source=source, problem=f"q{p}", answer="1", split=split)
        )
        for r in range(spec.rollins_per_problem):
            rid = f"{pid}-r{r}"
            tokens = _ids(rng, 5, 40)
            policy = "small" if r % 2 else "large"
            rollins.append(
                dict(
                    rollin_id=rid,
                    problem_id=pid,
                    policy=policy,
                    sample_index=r,
                    seed=r,
                    prompt_ids=_ids(rng, 3, 8),
                    token_ids=tokens,
                    finish_reason="stop",
                )
            )
            for c in range(spec.cuts_per_rollin):
                cut = rng.randint(0, len(tokens))
                for s in range(spec.samples_per_cut):
                    oid = f"{rid}-c{c}-s{s}"
                    rollouts.append(
                        dict(
                            rollout_id=oid,
                            rollin_id=rid,
                            problem_id=pid,
                            policy="roller",
                            cut_index=c,
                            cut_position=cut,
                            sample_index=s,
                            seed=s,
                            token_ids=_ids(rng, 1, 30),
                            finish_reason="stop",
                        )
                    )
                    ok = p not in spec.hopeless and rng.random() < spec.success_rate
                    label = 1 if ok else rng.choice([0, 2])
                    reason = {0: "mismatch", 1: "match", 2: "truncated"}[label]
                    verdicts.append(
                        dict(
                            trace_id=oid,
                            trace_table="rollouts",
                            problem_id=pid,
                            label=label,
                            reason=reason,
                            answer=None,
                            grader_version="1",
                        )
                    )
    for verdict in verdicts[: spec.errored]:
        verdict.update(label=None, reason="error")
    if spec.ungraded:
        verdicts = verdicts[: -spec.ungraded]
    tables = {
        "problems": (problems, False),
        "rollins": (rollins, True),
        "rollouts": (rollouts, True),
        "verdicts": (verdicts, False),
    }
    dirs = {}
    for name, (rows, tokens) in tables.items():
        writer = ShardWriter(root / name, name, _meta(name, tokens))
        half = len(rows) // 2
        writer.write("part-0", rows[:half])
        writer.write("part-1", rows[half:])
        writer.finalize()
        dirs[name] = root / name
    return dirs


def label_config(root: Path, **overrides) -> LabelConfig:
    """A LabelConfig reading the tables under ``root`` and writing ``root/labels``."""
    paths = {f"{t}_dir": str(root / t) for t in ("problems", "rollins", "rollouts", "verdicts")}
    return LabelConfig(**paths, output_dir=str(root / "labels"), **overrides)


def dataset_config(root: Path, **overrides) -> DatasetConfig:
    """A DatasetConfig reading ``root/labels`` and writing ``root/dataset``."""
    fields = dict(
        labels_dir=str(root / "labels"),
        verdicts_dir=str(root / "verdicts"),
        output_dir=str(root / "dataset"),
        provenance_dirs=[str(root / t) for t in ("rollins", "rollouts", "verdicts", "labels")],
    )
    return DatasetConfig(**{**fields, **overrides})


def labelled_run(root: Path, spec: TableSpec, **label_overrides) -> Path:
    """Write the input tables under ``root`` and run the real label stage on them."""
    from tracefactory.labels.stage import LabelStage
    from tracefactory.stage import run_stage

    write_tables(root, spec)
    config = label_config(root, **label_overrides)
    run_stage(LabelStage(config), config.output_dir)
    return root
