"""``ProblemsStage``: the first stage of the pipeline, writing the ``problems`` table.

Run it with ``tracefactory problems`` (what ``dvc.yaml`` calls). It is one shard run in-process:
cleaning needs every source at once (dedupe across sources), and the gold-answer check uses
math-verify's signal timeout, which works only in the main thread.
"""

from __future__ import annotations

import logging
from collections import Counter
from enum import StrEnum
from typing import TYPE_CHECKING

import polars as pl

from tracefactory.io import dataset_fingerprint, read_benchmark
from tracefactory.problems.clean import DropReason
from tracefactory.problems.config import SPLITS, ProblemsConfig
from tracefactory.problems.select import Selection, select_problems
from tracefactory.problems.sources import load_sources
from tracefactory.stage import Shard, ShardResult, Stage, StageRun
from tracefactory.summaries import SummaryKey

if TYPE_CHECKING:
    from tracefactory.params import Params

logger = logging.getLogger(__name__)


class ProblemsCount(StrEnum):
    """Counter families of the problems stage, each followed by a source, reason, benchmark or
    split name (``dropped_duplicate``)."""

    LOADED = "loaded_"
    KEPT = "kept_"
    DROPPED = "dropped_"
    CONTAMINATED = "contaminated_"
    SPLIT = "split_"


_LOADED, _KEPT, _DROPPED, _CONTAMINATED, _SPLIT = ProblemsCount


class ProblemsStage(Stage):
    """Loads, cleans, dedupes, decontaminates and splits the configured problem sources.

    Args:
        config: the ``problems`` section of params.yaml.
        seed: the run seed (drives the synthetic source).

    Its side output ``dropped`` holds every dropped row with its reason and what it matched
    (``reports/problems/dropped.json``, a JSON array, ``[]`` when nothing is dropped).
    """

    name = "problems"
    output_schema = "problems"
    version = 1
    counters = ProblemsCount
    side_outputs = ("dropped",)

    def __init__(self, config: ProblemsConfig, seed: int) -> None:
        self.config = config
        self.seed = seed

    @classmethod
    def from_params(cls, params: Params) -> ProblemsStage:
        return cls(params.problems, params.seed)

    def plan(self) -> list[Shard]:
        return [Shard("problems-00000")]

    def identity(self) -> list:
        """The config with each local source and benchmark file replaced by its content checksum
        (a replaced file changes the hash, a respelled or moved path does not), and the seed."""
        return [self._config_identity(), self.seed]

    def _config_identity(self) -> dict:
        identity = self.config.model_dump(mode="json")
        for source in identity["sources"]:
            if source["path"] is not None:
                source["path"] = dataset_fingerprint(source["path"])
        for benchmark in identity["decontamination"]["benchmarks"]:
            benchmark["path"] = dataset_fingerprint(benchmark["path"])
        return identity

    def process(self, shard: Shard, inputs: None) -> ShardResult:
        rows = load_sources(self.config.sources, self.seed)
        benchmarks = [
            read_benchmark(b, with_answers=False) for b in self.config.decontamination.benchmarks
        ]
        benchmark_rows = (
            pl.concat(benchmarks)
            if benchmarks
            else pl.DataFrame(
                schema={"benchmark": pl.String, "benchmark_row": pl.Int64, "problem": pl.String}
            )
        )
        selection = select_problems(rows, self.config, benchmark_rows)
        counts = selection_counts(selection)
        logger.info(
            "problems: kept %d of %d; dropped %s",
            selection.kept.height,
            rows.height,
            {k[len(_DROPPED) :]: v for k, v in counts.items() if k.startswith(_DROPPED) and v},
        )
        return ShardResult(
            rows=selection.kept.to_arrow(), counts=counts, side={"dropped": selection.dropped}
        )

    def report(self, run: StageRun) -> dict:
        """Counts per source, drop reason, benchmark and split."""
        return report_from_counts(run.stats, self.config)

    @staticmethod
    def summary(report: dict) -> dict:
        """Problems kept after cleaning, dedupe and decontamination."""
        return {SummaryKey.ROWS: report["problems"]}


def selection_counts(selection: Selection) -> dict[str, int]:
    """Flat counters of a selection (the stage's stats): loaded/kept per source, drops, splits."""
    counts: Counter[str] = Counter()
    for source, n in selection.loaded.items():
        counts[f"{_LOADED}{source}"] += n
    for source, n in selection.kept.group_by("source").len().iter_rows():
        counts[f"{_KEPT}{source}"] += n
    for reason in DropReason:
        counts[f"{_DROPPED}{reason}"] += 0
    for reason, n in selection.dropped.group_by("reason").len().iter_rows():
        counts[f"{_DROPPED}{reason}"] += n
    contaminated = selection.dropped.filter(pl.col("benchmark").is_not_null())
    for benchmark, n in contaminated.group_by("benchmark").len().iter_rows():
        counts[f"{_CONTAMINATED}{benchmark}"] += n
    for split in SPLITS:
        counts[f"{_SPLIT}{split}"] += 0
    for split, n in selection.kept.group_by("split").len().iter_rows():
        counts[f"{_SPLIT}{split}"] += n
    return dict(counts)


def report_from_counts(counts: dict[str, int], config: ProblemsConfig) -> dict:
    """The stage's ``metrics.json``: counts per source, drop reason, benchmark and split."""

    def with_prefix(prefix: str) -> dict[str, int]:
        return {k[len(prefix) :]: v for k, v in sorted(counts.items()) if k.startswith(prefix)}

    loaded, kept = with_prefix(_LOADED), with_prefix(_KEPT)
    sources = {
        s.name: {
            "loaded": loaded.get(s.name, 0),
            "kept": kept.get(s.name, 0),
            "dropped": loaded.get(s.name, 0) - kept.get(s.name, 0),
        }
        for s in config.sources
    }
    contamination = {b.name: 0 for b in config.decontamination.benchmarks}
    contamination.update(with_prefix(_CONTAMINATED))
    return {
        "loaded": sum(loaded.values()),
        "problems": sum(kept.values()),
        "sources": sources,
        "dropped": with_prefix(_DROPPED),
        "contamination": contamination,
        "splits": with_prefix(_SPLIT),
    }
