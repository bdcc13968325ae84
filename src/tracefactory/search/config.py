"""The ``evaluate`` section of params.yaml (benchmarks, methods, budgets, engines), and the search
settings validated once here for every beam search the evaluation runs."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from tracefactory.config import BenchmarkConfig, Section, WorkerConfig
from tracefactory.generation.config import PolicyConfig, SamplingConfig
from tracefactory.grading.grader import GraderConfig

# A sample budget N: bounded so a mistyped size fails when the params load instead of spinning
# (the paper's largest is 256).
Budget = Annotated[int, Field(ge=1, le=4096)]


class Selection(StrEnum):
    """How survivors are chosen among candidates."""

    VALUE = "value"  # VGS: by value at the candidate's last token
    RANDOM = "random"  # the control: uniformly at random


class Grouping(StrEnum):
    """How answers are partitioned into classes from pairwise equivalence (voting.py)."""

    CLOSURE = "closure"  # transitive closure: a~b and b~c put a, b, c in one class, whatever the
    # order (the grader's equivalence, tolerance-based, is not always transitive)
    FIRST_MEMBER = "first_member"  # the official: each answer, in order, joins the first class
    # whose first member it equals, else starts a class


class BonTies(StrEnum):
    """What best-of-N scores when several responses share the highest value."""

    AVERAGE = "average"  # expected accuracy of a uniform random pick among values within 1e-5
    FIRST = "first"  # the official (argmax): the first response of highest value


class SearchConfig(Section):
    """Block-wise beam search (the paper: w=2, 4096-token blocks, pooled selection)."""

    beam_width: int = Field(2, ge=1)
    """w: blocks sampled per unfinished beam (paper: 2)"""
    block_tokens: int = Field(40, ge=1)
    """B: block size, or a line block's cap (paper: 4096)"""
    line_blocks: bool = True
    """also end blocks at `delimiter` (false: fixed B-token blocks)"""
    delimiter: str = "\n"
    """text of the delimiter token(s) for line blocks"""
    max_children_per_parent: int | None = Field(1, ge=1)
    """kept beams per parent; None: pooled top-K (the paper)"""


class SearchSettings(Section):
    """One beam-search run: the configured search at one per-search budget and selection rule.

    Raises:
        ValueError: (at construction) a budget that is not a positive multiple of the beam width.
    """

    search: SearchConfig
    budget: int = Field(ge=1)
    """N of one search: K = N / w beams are kept"""
    selection: Selection = Selection.VALUE
    max_response_tokens: int = Field(ge=1)
    """response cap: a beam reaching it is finished"""

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
    """The evaluate stage: VGS, DVTS, the random control and the baselines.

    DVTS follows the paper's code: every search has a fixed budget ``dvts_budget`` and DVTS with
    R searches pools R of its repeated searches (total budget ``dvts_budget * R``); the sweep over
    R reuses the same searches, cut into disjoint groups of R.
    """

    problems_dir: str = "data/problems"
    """the embedded default's benchmark: its test split"""
    value_model: str = "models/value_model"
    """value model: a local folder or a Hub id (e.g. VGS-AI/DeepSeek-VM-1.5B); its tokenizer must be
    the policy's"""
    value_device: str = "cpu"
    """torch device of the value model ("cuda": beside vLLM)"""
    value_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """value model weights"""
    value_cache_tokens: int | None = Field(None, ge=0)
    """incremental scorer: KV-cache budget in tokens (bytes = tokens * layers * 2 * kv_heads *
    head_dim * dtype size); over it, nodes are not cached and their children are re-encoded in
    batches. None: unbounded"""
    output_dir: str = "reports/evaluate"
    """metrics.json, plots/, *.png, report.md"""
    samples_dir: str = "data/evaluate"
    """per-sample table (schemas/evaluate_samples.yaml)"""
    benchmarks: list[BenchmarkConfig] = [BenchmarkConfig(name="synthetic_test")]
    """path None: the problems table's test split"""
    max_problems: int | None = Field(200, ge=1)
    """first N problems per benchmark (None: all)"""
    policy: PolicyConfig = PolicyConfig(batch_size=256)
    """the searched policy (paper: 1.5B)"""
    sampling: SamplingConfig = SamplingConfig()
    """the paper: 0.6, 0.95, 16,384 tokens"""
    budgets: list[Budget] = Field([4, 8, 16], min_length=1)
    """N of pass@N/MV/BoN/WMV (from one pool of independent samples per problem)"""
    independent_samples: Budget | None = None
    """samples per problem of that pool (None: max(budgets)); each budget N is averaged over the
    pool's disjoint groups of N, so a pool of 4N gives MV@N four trials: the paired differences
    against MV then carry less of MV's own sampling noise, for the cost of sampling only"""
    search_budgets: list[Budget] = Field([16], min_length=1)
    """N of one search: VGS and random@N"""
    search: SearchConfig = SearchConfig()
    search_seeds: int = Field(1, ge=1, le=1024)
    """repeated searches per budget (trials of the CIs)"""
    dvts_budget: int | None = Field(None, ge=1)
    """per-search N of DVTS (one of search_budgets)"""
    dvts_searches: list[Annotated[int, Field(ge=1, le=1024)]] = []
    """R values swept: dvts@(dvts_budget * R); each divides max(R)"""
    random_control: bool = True
    """also run the search with random selection (random@N)"""
    scorer: Literal["incremental", "full"] = "incremental"
    """KV-cached or full re-encode"""
    value_batch_tokens: int = Field(16384, ge=64)
    """padded tokens per value-model forward"""
    problems_per_batch: int = Field(50, ge=1)
    """problems per shard of the sample table (searched in lockstep: memory vs speed; a killed run
    redoes at most one batch's method)"""
    grader: GraderConfig = GraderConfig()
    """answer extraction, math-verify and equivalence"""
    grouping: Grouping = Grouping.CLOSURE
    """answer classes of the votes (official: first_member)"""
    bon_ties: BonTies = BonTies.AVERAGE
    """best-of-N among equal values (official: first)"""
    bootstrap_resamples: int = Field(2000, ge=100, le=1_000_000)
    """bootstrap CI over problems"""
    num_threads: int = Field(1, ge=1)
    """torch CPU threads per worker"""
    workers: WorkerConfig = WorkerConfig()
    """the evaluation's workers (Ray actors), each with its own policy engine, value model and
    grader; shards (a method on a batch of problems) go to whichever is free. On GPUs, one per GPU
    (`num_gpus: 1`): vLLM and the value model share it"""
    use_ray: bool = True
    """False: run in this process (debugging)"""

    @model_validator(mode="after")
    def _budgets_fit(self) -> EvaluateConfig:
        if min(self.budgets) < 1:
            raise ValueError(f"budgets must be positive, got {self.budgets}")
        if self.independent_pool < max(self.budgets):
            raise ValueError(
                f"independent_samples {self.independent_samples} is below the largest budget "
                f"{max(self.budgets)}: the pool must hold at least one group of each budget"
            )
        for budget in self.search_budgets:
            self.search_settings(budget)
        if self.dvts_searches and self.dvts_budget not in self.search_budgets:
            raise ValueError(
                f"dvts_budget {self.dvts_budget} must be one of search_budgets "
                f"{self.search_budgets} (DVTS pools those searches)"
            )
        most = max(self.dvts_searches, default=1)
        for searches in self.dvts_searches:
            if searches < 2 or most % searches:
                raise ValueError(
                    f"dvts_searches {self.dvts_searches}: each R must be >= 2 and divide "
                    f"max(R)={most} (e.g. 2, 4, 8, 16)"
                )
        return self

    @property
    def independent_pool(self) -> int:
        """Samples per problem of the independent pool."""
        return self.independent_samples or max(self.budgets)

    def repetitions(self, budget: int) -> int:
        """Searches run per problem at per-search ``budget``: ``search_seeds``, times max(R) at
        ``dvts_budget`` so every DVTS size has ``search_seeds`` disjoint groups."""
        if budget == self.dvts_budget and self.dvts_searches:
            return self.search_seeds * max(self.dvts_searches)
        return self.search_seeds

    def search_settings(
        self, budget: int, selection: Selection = Selection.VALUE
    ) -> SearchSettings:
        """The settings of one search of per-search budget ``budget``.

        Raises:
            ValueError: a budget that is not a positive multiple of the beam width.
        """
        return SearchSettings(
            search=self.search,
            budget=budget,
            selection=selection,
            max_response_tokens=self.sampling.max_response_tokens,
        )
