"""The ``problems`` section of params.yaml: sources, cleaning, dedupe, decontamination, splits.

Kept beside the stage; ``tracefactory.params.Params`` assembles it with the other sections.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from tracefactory.config import BenchmarkConfig, Section
from tracefactory.toyworld.task import SyntheticTaskConfig

SPLITS = ("train", "val", "test")


class SourceType(StrEnum):
    """Where a source's rows come from."""

    DATASET = "dataset"  # a local JSONL/JSON/Parquet/CSV file or a Hub dataset id, via `datasets`
    SYNTHETIC = "synthetic"  # the toy world's generator (tracefactory.toyworld.task)


class ColumnMapping(Section):
    """Which columns hold the problem, its gold answer and (optionally) a fixed split."""

    problem: str = "problem"
    """problem statement column (OpenR1-Math: problem)"""
    answer: str = "answer"
    r"""gold answer column, LaTeX without \boxed (OpenR1-Math: answer)"""
    split: str | None = None
    """column holding train/val/test to keep as is; None: split by id"""


class SourceConfig(Section):
    """One problem source. Several are mixed in order; earlier sources win exact duplicates."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """label in the table and report"""
    type: SourceType = SourceType.DATASET
    """dataset | synthetic"""
    path: str | None = None
    """dataset: local file (or glob) or Hub id, e.g. open-r1/OpenR1-Math-220k"""
    subset: str | None = None
    """dataset: Hub config name (e.g. "default"); unused for local files"""
    split: str = "train"
    """dataset: which split of the Hub dataset / local files to read"""
    columns: ColumnMapping = ColumnMapping()
    """dataset: column names"""
    limit: int | None = Field(None, ge=1)
    """read only the first N rows (None: all)"""
    task: SyntheticTaskConfig = SyntheticTaskConfig()
    """synthetic: difficulty knobs"""
    counts: dict[str, int] = {}
    """synthetic: problems per split, e.g. {train: 400, val: 50}"""

    @model_validator(mode="after")
    def _check_type_fields(self) -> SourceConfig:
        if self.type is SourceType.DATASET and not self.path:
            raise ValueError(f"source {self.name!r}: type dataset needs a path (file or Hub id)")
        if self.type is SourceType.SYNTHETIC:
            bad = sorted(set(self.counts) - set(SPLITS))
            if bad or not self.counts:
                raise ValueError(
                    f"source {self.name!r}: counts must map some of {list(SPLITS)} to problem "
                    f"counts, got {self.counts}"
                )
            if any(n < 0 for n in self.counts.values()):
                raise ValueError(f"source {self.name!r}: counts must be >= 0, got {self.counts}")
        return self


class CleaningConfig(Section):
    """The paper's cleaning rules (section 3); each can be switched off, each drop has a reason."""

    max_problem_chars: int | None = Field(4000, ge=1)
    """longer problems are dropped (None: keep)"""
    drop_links: bool = True
    """URLs in the problem (the reader cannot follow them)"""
    drop_images: bool = True
    r"""markdown/HTML images, \includegraphics, image file names"""
    drop_multiple_choice: bool = True
    """options (A)..(E) in the problem or a letter as the answer"""
    drop_multi_part: bool = True
    """(a)/(b), (i)/(ii) or numbered sub-questions in one problem"""
    max_question_marks: int | None = None
    """more '?' than this = several questions (None: off)"""
    drop_multiple_answers: bool = True
    r"""several \boxed, ';' or 'and'/'or' joining answers"""
    drop_prose_answers: bool = True
    """answers that are words (proof, notfound, yes) not math"""
    check_answer_parses: bool = True
    """gold must parse with math-verify (bounded per answer)"""
    parse_timeout_s: int = Field(5, ge=1)
    """math-verify parsing timeout per answer, seconds"""


class DedupeConfig(Section):
    """Duplicate removal; the first occurrence (in source order) is kept."""

    exact: bool = True
    """same normalized text (= same problem id)"""
    near: bool = False
    """MinHash estimate of word-shingle Jaccard similarity >= near_threshold"""
    near_threshold: float = Field(0.8, gt=0, le=1)
    """Jaccard similarity counted as a duplicate"""
    shingle_words: int = Field(5, ge=1)
    """words per shingle for near-duplicate detection"""


class DecontaminationConfig(Section):
    """n-gram decontamination against evaluation benchmarks (the paper: 8-grams)."""

    ngram: int = Field(8, ge=1)
    """a problem sharing any n-gram with a benchmark is dropped"""
    tokens: Literal["whitespace", "words"] = "whitespace"
    """whitespace: lower-cased text split on whitespace (open-r1's / s1's decontamination); words:
    alphanumeric runs (also catches copies with different LaTeX markup, but flags more
    boilerplate such as "1 2 3 4 5 6 7 8")"""
    benchmarks: list[BenchmarkConfig] = []
    """evaluation sets; empty: no decontamination"""

    @model_validator(mode="after")
    def _benchmarks_have_paths(self) -> DecontaminationConfig:
        unnamed = [b.name for b in self.benchmarks if not b.path]
        if unnamed:
            raise ValueError(f"benchmarks {unnamed}: decontamination needs a path (file or Hub id)")
        return self


class SplitConfig(Section):
    """Deterministic splits by problem id. A value < 1 is a fraction, >= 1 a count of problems."""

    val: float = Field(0.05, ge=0)
    """the paper: 500 problems"""
    test: float = Field(0.05, ge=0)
    """the paper: 500 problems"""

    @model_validator(mode="after")
    def _check_sizes(self) -> SplitConfig:
        for name in ("val", "test"):
            value = getattr(self, name)
            if value >= 1 and value != int(value):
                raise ValueError(f"split.{name}={value}: a count (>= 1) must be a whole number")
        if self.val < 1 and self.test < 1 and self.val + self.test > 1:
            raise ValueError(f"split fractions val={self.val} + test={self.test} exceed 1")
        return self


class ProblemsConfig(Section):
    """The ``problems`` stage: which problems enter the pipeline and how they are split."""

    output_dir: str = "data/problems"
    """output table (schemas/problems.yaml)"""
    sources: list[SourceConfig] = [
        SourceConfig(
            name="synthetic",
            type=SourceType.SYNTHETIC,
            counts={"train": 256, "val": 32, "test": 64},
        )
    ]
    """mixed in order"""
    cleaning: CleaningConfig = CleaningConfig()
    dedupe: DedupeConfig = DedupeConfig()
    decontamination: DecontaminationConfig = DecontaminationConfig()
    split: SplitConfig = SplitConfig()

    @model_validator(mode="after")
    def _check_unique_names(self) -> ProblemsConfig:
        names = [s.name for s in self.sources]
        if not names:
            raise ValueError("problems.sources is empty: configure at least one source")
        if len(set(names)) != len(names):
            raise ValueError(f"problems.sources: names must be unique, got {names}")
        benchmarks = [b.name for b in self.decontamination.benchmarks]
        if len(set(benchmarks)) != len(benchmarks):
            raise ValueError(f"problems.decontamination.benchmarks: duplicate names {benchmarks}")
        return self
