"""The ``evaluate`` section of params.yaml (benchmarks, methods, budgets, engines), and the search
settings validated once here for every beam search the evaluation runs."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from tracefactory.config import BenchmarkConfig, Section
from tracefactory.generation.config import PolicyConfig, SamplingConfig
from tracefactory.grading.grader import GraderConfig


class Selection(StrEnum):
    """How survivors are chosen among candidates."""

    VALUE = "value"  # VGS: by value at the candidate's last token
    RANDOM = "random"  # the control: uniformly at random


class SearchConfig(Section):
    """Block-wise beam search (the paper: w=2, 4096-token blocks, pooled selection)."""

    beam_width: int = Field(2, ge=1)  # w: blocks sampled per unfinished beam (paper: 2)
    block_tokens: int = Field(40, ge=1)  # B: block size, or a line block's cap (paper: 4096)
    line_blocks: bool = True  # also end blocks at `delimiter` (false: fixed B-token blocks)
    delimiter: str = "\n"  # text of the delimiter token(s) for line blocks
    max_children_per_parent: int | None = Field(1, ge=1)  # kept beams per parent; None: pooled
    # top-K (the paper)
    dvts_searches: int = Field(1, ge=1)  # R independent searches pooled (DVTS)


class SearchSettings(Section):
    """One beam-search run: the configured search at one per-search budget and selection rule.

    Raises:
        ValueError: (at construction) a budget that is not a positive multiple of the beam width.
    """

    search: SearchConfig
    budget: int = Field(ge=1)  # N of one search: K = N / w beams are kept
    selection: Selection = Selection.VALUE
    max_response_tokens: int = Field(ge=1)  # response cap: a beam reaching it is finished

    @model_validator(mode="after")
    def _whole_beams(self) -> SearchSettings:
        width = self.search.beam_width
        if self.budget < width or self.budget % width:
            raise ValueError(
                f"search budget {self.budget} must be a positive multiple of beam_width {width}"
            )
        return self

    @property
    def beams(self) -> int:
        return self.budget // self.search.beam_width


class EvaluateConfig(Section):
    """The evaluate stage: VGS, DVTS, the random control and the baselines."""

    problems_dir: str = "data/problems"  # the embedded default's benchmark: its test split
    value_model_dir: str = "models/value_model"  # the train stage's HF folder
    output_dir: str = "reports/evaluate"  # metrics.json, plots/, *.png, report.md
    benchmarks: list[BenchmarkConfig] = [BenchmarkConfig(name="synthetic_test")]  # path None: the
    # problems table's test split
    max_problems: int | None = Field(200, ge=1)  # first N problems per benchmark (None: all)
    policy: PolicyConfig = PolicyConfig(batch_size=256)  # the searched policy (paper: 1.5B)
    sampling: SamplingConfig = SamplingConfig()  # the paper: 0.6, 0.95, 16,384 tokens
    budgets: list[int] = Field([4, 8, 16], min_length=1)  # N of pass@1/MV/BoN/WMV (one pool
    # of max(budgets) samples)
    search_budgets: list[int] = [16]  # total N of VGS and random@N (N/dvts_searches per search)
    search: SearchConfig = SearchConfig()
    search_seeds: int = Field(1, ge=1)  # repeated runs of each search (within-problem CI)
    random_control: bool = True  # also run the search with random selection (random@N)
    scorer: Literal["incremental", "full"] = "incremental"  # KV-cached or full re-encode
    value_batch_tokens: int = Field(16384, ge=64)  # padded tokens per value-model forward
    problems_per_batch: int = Field(50, ge=1)  # problems searched in lockstep (memory vs speed)
    grader: GraderConfig = GraderConfig()  # answer extraction, math-verify and equivalence
    bootstrap_resamples: int = Field(2000, ge=100)  # bootstrap CI over problems
    num_threads: int = Field(1, ge=1)  # torch CPU threads

    @model_validator(mode="after")
    def _budgets_fit(self) -> EvaluateConfig:
        if min(self.budgets) < 1:
            raise ValueError(f"budgets must be positive, got {self.budgets}")
        for total in self.search_budgets:
            self.search_settings(total)
        return self

    def search_settings(self, total: int, selection: Selection = Selection.VALUE) -> SearchSettings:
        """The settings of one search run of total budget ``total`` (``total / dvts_searches``
        per search).

        Raises:
            ValueError: a total that does not split into searches of whole beams.
        """
        searches = self.search.dvts_searches
        if total % searches:
            raise ValueError(
                f"search_budgets: {total} does not split into dvts_searches={searches} searches"
            )
        return SearchSettings(
            search=self.search,
            budget=total // searches,
            selection=selection,
            max_response_tokens=self.sampling.max_response_tokens,
        )
