"""``tracefactory plan``: what a profile will cost, before anything runs.

From the params (a profile applied over params.yaml, in memory) it counts problems, roll-ins and
roll-outs, and draws the generated and prefilled tokens per policy by Monte Carlo: trace lengths
from a length model (the simulated engine's, whose R1-Distill defaults are documented in
docs/scale.md, or the lengths a ``--pilot`` roll-in run measured), branch points with the rollout
stage's own ``draw_cut_positions``, a roll-out's total length drawn from the same lengths
conditioned on exceeding its cut. GPU-hours come from ``THROUGHPUT`` (decode tokens/s per GPU by GPU
kind and model size, each figure with its source; ``--throughput FILE`` overrides it), the value
model's training from 6 x parameters x tokens FLOPs at an assumed utilisation. Disk per table is
tokens x bytes per token, measured on a sample written as the tables are (zstd Parquet).

Assumptions, stated in the output: GPUs are packed perfectly (a stage's wall time is its GPU-hours
over the cluster's GPUs); roll-out contexts are prefilled in full (vLLM's prefix caching only
lowers this); prefill runs ``PREFILL_SPEEDUP`` times faster than decode per token.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tracefactory.errors import ConfigError
from tracefactory.generation.branch_points import draw_cut_positions
from tracefactory.generation.config import PolicyConfig, SimulationConfig
from tracefactory.generation.simulated_backend import FILLER, LengthModel
from tracefactory.params import Params

# Decode throughput of vLLM on long reasoning traces, output tokens/s per GPU, by GPU kind and
# model size (billions of parameters). A team overrides it with its own measurement
# (--throughput FILE: {"h100": {"7": [tokens_per_s, "source"]}}).
THROUGHPUT: dict[str, dict[str, tuple[float, str]]] = {
    "h100": {
        "1.5": (6000.0, "estimate: 2x the 7B figure (decode is memory-bound; smaller weights)"),
        "7": (
            3000.0,
            "GPUStack performance lab, Qwen3.5-9B on H100 80GB, vLLM, 'Generation Heavy' "
            "profile: 2,973-3,025 tok/s (docs.gpustack.ai/latest/performance-lab/qwen3.5-9b/h100)",
        ),
        "14": (1500.0, "estimate: half the 7B figure per GPU (2x the weights, TP 2)"),
        "32": (700.0, "estimate: under half the 14B figure per GPU (TP 4)"),
    },
    "a100": {
        size: (rate * 0.6, f"H100 figure x 0.6 (HBM bandwidth 2.0 vs 3.35 TB/s); {source}")
        for size, (rate, source) in {
            "1.5": (6000.0, "see h100"),
            "7": (3000.0, "see h100"),
            "14": (1500.0, "see h100"),
            "32": (700.0, "see h100"),
        }.items()
    },
}
PREFILL_SPEEDUP = 10.0  # prefill tokens/s = 10 x decode tokens/s (assumption: compute-bound)
PEAK_BF16_TFLOPS = {"h100": 989.0, "a100": 312.0}  # dense bf16, NVIDIA datasheets
TRAIN_MFU = 0.35  # assumed model-FLOPs utilisation of the value model's training
ROW_BYTES = 64  # ids, seeds, reasons of a row, compressed (measured on the simulated profile)
DEFAULT_BYTES_PER_TOKEN = 2.0  # int32 ids of a 150K vocabulary, zstd (assumption; --pilot measures)
# The dataset's `text` config, decoded: ~4 characters a token for English and LaTeX, zstd ~3.3x
# (assumption; on the simulated profile it is measured by decoding with its tokenizer).
DEFAULT_TEXT_BYTES_PER_TOKEN = 1.2
PAPER_PROMPT_TOKENS = 120  # R1 template plus a competition problem (assumption; --pilot measures)
SAMPLES = 4000  # Monte Carlo roll-ins per policy


@dataclass
class PolicyPlan:
    name: str
    model: str
    rollins: int = 0
    rollouts: int = 0
    generated_tokens: int = 0
    prefilled_tokens: int = 0
    gpu_hours: float = 0.0
    throughput_source: str = ""


@dataclass
class Plan:
    problems: int
    rollins: int
    rollouts: int
    policies: dict[str, dict[str, PolicyPlan]]  # stage -> policy -> plan
    tables: dict[str, dict[str, float]]  # table -> rows, tokens, disk_bytes
    stage_gpu_hours: dict[str, float]
    train_gpu_hours: float
    gpu_hours: float
    wall_hours: float
    gpu: str
    nodes: int
    gpus_per_node: int
    assumptions: list[str] = field(default_factory=list)


class LengthSource:
    """Trace lengths (uncapped totals) and P(right) per problem, drawn for the Monte Carlo."""

    def __init__(self, simulation: SimulationConfig, measured: np.ndarray | None = None):
        self.model = LengthModel(simulation)
        self.simulation = simulation
        self.measured = np.sort(measured) if measured is not None else None

    def draw(self, rng: np.random.Generator, p_right: float, longer_than: int = 0) -> int:
        if self.measured is not None:  # the pilot's lengths, conditioned on > longer_than
            longer = self.measured[np.searchsorted(self.measured, longer_than, side="right") :]
            return int(rng.choice(longer)) if len(longer) else longer_than + 1
        right = bool(rng.random() < p_right)
        return self.model.draw_total(float(rng.random()), right, longer_than)

    def p_right(self, rng: np.random.Generator) -> float:
        return float(rng.beta(self.simulation.accuracy_alpha, self.simulation.accuracy_beta))


def model_size(model: str) -> str | None:
    """The size key of ``THROUGHPUT`` for a model id (``...-Qwen-7B`` -> ``7``), None if unknown."""
    match = re.search(r"(\d+(?:\.\d+)?)[Bb]\b", model)
    return match.group(1) if match else None


def throughput(policy: PolicyConfig, gpu: str, table: dict) -> tuple[float, str]:
    """Decode tokens/s per GPU of a policy (inf for the simulated engine: no GPU).

    Raises:
        ConfigError: for a GPU kind or model size the table lacks.
    """
    if policy.backend == "simulated":
        return math.inf, "simulated engine: no GPU"
    if gpu not in table:
        raise ConfigError(f"plan: no throughput for GPU {gpu!r}; known: {sorted(table)}")
    size = model_size(policy.model)
    if size not in table[gpu]:
        raise ConfigError(
            f"plan: no {gpu} throughput for model {policy.model!r} (size {size}); known sizes "
            f"{sorted(table[gpu])}: pass --throughput FILE with your measurement"
        )
    rate, source = table[gpu][size]
    return float(rate), source


def bytes_per_token(vocabulary: np.ndarray, rng: np.random.Generator) -> float:
    """Bytes per token of traces drawn uniformly from ``vocabulary``, stored as the tables are."""
    rows = [vocabulary[rng.integers(0, len(vocabulary), size=4000)].tolist() for _ in range(50)]
    sink = io.BytesIO()
    table = pa.table({"token_ids": pa.array(rows, type=pa.list_(pa.int32()))})
    pq.write_table(table, sink, compression="zstd")
    return sink.tell() / (50 * 4000)


def text_bytes_per_token(vocabulary: np.ndarray, tokenizer, rng: np.random.Generator) -> float:
    """Bytes per token of the same traces decoded to text, stored as the ``text`` config is."""
    rows = [vocabulary[rng.integers(0, len(vocabulary), size=4000)].tolist() for _ in range(50)]
    sink = io.BytesIO()
    table = pa.table({"text": pa.array(tokenizer.batch_decode(rows), type=pa.string())})
    pq.write_table(table, sink, compression="zstd")
    return sink.tell() / (50 * 4000)


def count_train_problems(params: Params, train_problems: int | None = None) -> tuple[int, int]:
    """(train problems, all problems): ``train_problems`` if given (plus the configured val and
    test), else from the problems table if it exists, else the counts of synthetic sources.

    Raises:
        ConfigError: for sources whose size is only known once the problems stage has run.
    """
    from tracefactory.io import TableReader

    if train_problems is not None:
        split = params.problems.split
        held_out = sum(v for v in (split.val, split.test) if v >= 1)
        return train_problems, train_problems + round(held_out)
    folder = Path(params.problems.output_dir)
    if (folder / "manifest.json").exists():
        frame = TableReader(folder).scan().select("split").collect()
        return int((frame["split"] == "train").sum()), frame.height
    train = total = 0
    for source in params.problems.sources:
        if not source.counts:
            raise ConfigError(
                f"plan: problem source {source.name!r} has no size before the problems stage "
                "runs; pass --problems N (train problems), or run `tracefactory problems` first"
            )
        train += source.counts.get("train", 0)
        total += sum(source.counts.values())
    return train, total


def make_plan(
    params: Params,
    gpu: str = "h100",
    nodes: int = 1,
    gpus_per_node: int = 8,
    table: dict | None = None,
    pilot_lengths: np.ndarray | None = None,
    pilot_bytes_per_token: float | None = None,
    prompt_tokens: float | None = None,
    train_problems: int | None = None,
    seed: int = 0,
) -> Plan:
    """The plan of ``params`` (see the module doc)."""
    table = table or THROUGHPUT
    rng = np.random.default_rng(seed)
    rollin, rollout = params.rollin, params.rollout
    train, total_problems = count_train_problems(params, train_problems)
    problems = min(train, rollin.max_problems or train)
    k, m = rollin.samples_per_problem, rollout.samples_per_cut
    cap_in, cap_out = rollin.sampling.max_response_tokens, rollout.sampling.max_response_tokens
    simulated = rollin.policies[0].simulation or rollout.policy.simulation
    lengths = LengthSource(simulated or SimulationConfig(), pilot_lengths)
    simulated_only = all(p.backend == "simulated" for p in [*rollin.policies, rollout.policy])
    text_bpt = DEFAULT_TEXT_BYTES_PER_TOKEN
    if pilot_bytes_per_token is not None:
        bpt = pilot_bytes_per_token
    elif simulated_only:
        from tracefactory.models import load_tokenizer

        tokenizer = load_tokenizer(rollout.policy.model)
        vocabulary = np.array(tokenizer.encode(FILLER, add_special_tokens=False))
        bpt = bytes_per_token(vocabulary, rng)
        text_bpt = text_bytes_per_token(vocabulary, tokenizer, rng)
    else:
        bpt = DEFAULT_BYTES_PER_TOKEN
    if prompt_tokens is None:
        prompt_tokens = _prompt_tokens(params) if simulated_only else PAPER_PROMPT_TOKENS

    # Monte Carlo over SAMPLES roll-ins: per roll-in its length, cuts and roll-outs.
    gen_in = gen_out = prefix_tokens = cuts_total = 0
    graded_right = []
    problems_mc = max(1, SAMPLES // k)
    kept = 0
    for index in range(problems_mc):
        p_right = lengths.p_right(rng)
        problem_right = False
        for sample in range(k):
            length = min(lengths.draw(rng, p_right), cap_in)
            gen_in += length
            cuts = draw_cut_positions(
                length, rollout.cuts_per_rollin, rollout.cut_distribution, index * 100 + sample
            )
            for position in cuts:
                for _ in range(m):
                    total = lengths.draw(rng, p_right, longer_than=position)
                    generated = min(total, cap_out) - position
                    gen_out += generated
                    prefix_tokens += position
                    cuts_total += 1
                    right = total <= cap_out and rng.random() < p_right
                    problem_right |= right
                    graded_right.append(right)
        kept += problem_right
    scale = problems * k / (problems_mc * k)
    rollins = problems * k
    rollouts = round(cuts_total * scale)
    rollin_tokens, rollout_tokens = gen_in * scale, gen_out * scale
    label_share = kept / problems_mc if params.label.drop_all_failed else 1.0

    policies: dict[str, dict[str, PolicyPlan]] = {"rollin": {}, "rollout": {}}
    weights = sum(p.weight for p in rollin.policies)
    for policy in rollin.policies:
        share = policy.weight / weights
        rate, source = throughput(policy, gpu, table)
        plan = PolicyPlan(policy.name, policy.model, throughput_source=source)
        plan.rollins = round(rollins * share)
        plan.generated_tokens = round(rollin_tokens * share)
        plan.prefilled_tokens = round(plan.rollins * prompt_tokens)
        plan.gpu_hours = _gpu_hours(plan, rate)
        policies["rollin"][policy.name] = plan
    rate, source = throughput(rollout.policy, gpu, table)
    out = PolicyPlan(rollout.policy.name, rollout.policy.model, throughput_source=source)
    out.rollouts = rollouts
    out.generated_tokens = round(rollout_tokens)
    out.prefilled_tokens = round(rollouts * prompt_tokens + prefix_tokens * scale)
    out.gpu_hours = _gpu_hours(out, rate)
    policies["rollout"][rollout.policy.name] = out

    label_rows = round(rollouts * label_share)
    label_input_tokens = (rollout_tokens + prefix_tokens * scale) * label_share
    label_input_tokens += label_rows * prompt_tokens
    tables = {
        "problems": {"rows": total_problems, "tokens": 0, "disk_bytes": total_problems * 200},
        "rollins": {
            "rows": rollins,
            "tokens": round(rollin_tokens),
            "disk_bytes": round(rollin_tokens * bpt + rollins * ROW_BYTES),
        },
        "rollouts": {
            "rows": rollouts,
            "tokens": round(rollout_tokens),
            "disk_bytes": round(rollout_tokens * bpt + rollouts * ROW_BYTES),
        },
        "verdicts": {"rows": rollins + rollouts, "tokens": 0, "disk_bytes": 0},
        "labels": {
            "rows": label_rows,
            "tokens": round(rollout_tokens * label_share),
            "disk_bytes": round(label_input_tokens * bpt + label_rows * ROW_BYTES),
        },
        # Two configs of token ids (default and openr1_vm) of the labelled traces, twice the
        # labels' bytes (the ratio measured on the simulated profile), and the `text` config, the
        # same traces decoded.
        "dataset": {
            "rows": label_rows,
            "tokens": round(rollout_tokens * label_share),
            "disk_bytes": round(label_input_tokens * (2 * bpt + text_bpt)),
        },
    }
    tables["verdicts"]["disk_bytes"] = tables["verdicts"]["rows"] * 40
    stage_hours = {
        "rollin": sum(p.gpu_hours for p in policies["rollin"].values()),
        "rollout": out.gpu_hours,
    }
    train_hours = _train_gpu_hours(params, label_rows, label_input_tokens, gpu)
    gpus = nodes * gpus_per_node
    gpu_hours = stage_hours["rollin"] + stage_hours["rollout"] + train_hours
    return Plan(
        problems=problems,
        rollins=rollins,
        rollouts=rollouts,
        policies=policies,
        tables=tables,
        stage_gpu_hours=stage_hours,
        train_gpu_hours=train_hours,
        gpu_hours=gpu_hours,
        wall_hours=gpu_hours / gpus,
        gpu=gpu,
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        assumptions=[
            f"lengths: {'pilot measurement' if pilot_lengths is not None else 'length model'} "
            "(docs/scale.md); roll-out totals conditioned on exceeding the cut",
            f"bytes per token: {bpt:.2f}; prompt tokens per trace: {prompt_tokens:.0f}",
            f"prefill at {PREFILL_SPEEDUP:g}x decode throughput; no prefix caching counted",
            f"wall time: GPU-hours over {gpus} GPUs, perfectly packed",
            f"training: 6 x params x tokens at {TRAIN_MFU:.0%} of {gpu} bf16 peak",
        ],
    )


def _gpu_hours(plan: PolicyPlan, rate: float) -> float:
    if math.isinf(rate):
        return 0.0
    return (plan.generated_tokens / rate + plan.prefilled_tokens / (rate * PREFILL_SPEEDUP)) / 3600


def _train_gpu_hours(params: Params, rows: int, input_tokens: float, gpu: str) -> float:
    size = model_size(params.train.init_from)
    if size is None or gpu not in PEAK_BF16_TFLOPS or rows == 0:
        return 0.0  # the tiny policy or an unknown size: not a GPU job worth planning
    mean_row = min(input_tokens / rows, params.train.max_length)
    if params.train.max_steps is not None:
        tokens = params.train.max_steps * params.train.batch_size * mean_row
    else:
        tokens = params.train.epochs * rows * mean_row
    flops = 6 * float(size) * 1e9 * tokens
    return flops / (PEAK_BF16_TFLOPS[gpu] * 1e12 * TRAIN_MFU) / 3600


def _prompt_tokens(params: Params) -> float:
    """Mean prompt tokens of a simulated profile: its problems (the table if it exists, else the
    synthetic sources' problems) in the roll-in policy's template and tokenizer."""
    from tracefactory.generation.templates import encode_prompt
    from tracefactory.io import TableReader
    from tracefactory.models import load_tokenizer
    from tracefactory.toyworld.task import generate_problems

    policy = params.rollin.policies[0]
    folder = Path(params.problems.output_dir)
    if (folder / "manifest.json").exists():
        texts = TableReader(folder).scan().select("problem").head(500).collect()["problem"]
    else:
        source = next(s for s in params.problems.sources if s.counts)
        drawn = generate_problems(params.seed, 200, "train", source.task)
        texts = [row["problem"] for row in drawn]
    tokenizer = load_tokenizer(policy.model)
    return float(np.mean([len(encode_prompt(tokenizer, policy.template, t)) for t in texts]))


def pilot_lengths(params: Params, problems: int, folder: Path) -> tuple[np.ndarray, float]:
    """Run the rollin stage on the first ``problems`` problems into ``folder``; the roll-ins'
    generated lengths and the table's bytes per token."""
    import polars as pl

    from tracefactory.generation.rollin import run_rollin
    from tracefactory.io import TableReader

    config = params.rollin.model_copy(update={"max_problems": problems, "output_dir": str(folder)})
    run_rollin(config, params.seed, params.ray if config.use_ray else None)
    reader = TableReader(folder)
    frame = reader.scan().select(pl.col("token_ids").list.len().alias("n")).collect()
    lengths = frame["n"].to_numpy()
    disk = sum(f.stat().st_size for f in Path(folder).glob("*.parquet"))
    return lengths, disk / max(1, int(lengths.sum()))


def print_plan(plan: Plan) -> None:
    print(f"problems (train, with roll-ins): {plan.problems:,}")
    print(f"roll-ins: {plan.rollins:,}   roll-outs: {plan.rollouts:,}")
    print(f"{'stage':<8} {'policy':<20} {'generated':>16} {'prefilled':>16} {'GPU-h':>10}")
    for stage, policies in plan.policies.items():
        for p in policies.values():
            print(
                f"{stage:<8} {p.name:<20} {p.generated_tokens:>16,} {p.prefilled_tokens:>16,} "
                f"{p.gpu_hours:>10,.1f}"
            )
    print(f"value-model training: {plan.train_gpu_hours:,.1f} GPU-h")
    print(
        f"total: {plan.gpu_hours:,.1f} {plan.gpu} GPU-hours; wall {plan.wall_hours:,.1f} h on "
        f"{plan.nodes} node(s) x {plan.gpus_per_node} GPUs"
    )
    print(f"{'table':<10} {'rows':>14} {'tokens':>18} {'disk GB':>10}")
    for name, t in plan.tables.items():
        print(f"{name:<10} {t['rows']:>14,} {t['tokens']:>18,} {t['disk_bytes'] / 1e9:>10.2f}")
    for line in plan.assumptions:
        print(f"assumption: {line}")


def write_plan(plan: Plan, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.json"
    path.write_text(json.dumps(asdict(plan), indent=2) + "\n")
    return path


def run_plan(
    params_path: Path,
    profile: Path | None,
    gpu: str,
    nodes: int,
    gpus_per_node: int,
    throughput_file: Path | None,
    pilot: int | None,
    reports: Path,
    train_problems: int | None = None,
) -> Plan:
    """``tracefactory plan``: load params (``profile`` merged over them in memory), plan, print,
    write ``reports/plan.json``.

    Raises:
        ConfigError: for invalid params, a bad throughput file, or an unplannable source.
    """
    from tracefactory.config import deep_merge, read_yaml
    from tracefactory.params import KeySources, validate_params

    data = read_yaml(params_path)
    sources = KeySources()
    sources.add(data, str(params_path))
    if profile is not None:
        overlay = read_yaml(profile)
        data = deep_merge(data, overlay)
        sources.add(overlay, str(profile))
    params = validate_params(data, sources)
    table = THROUGHPUT
    if throughput_file is not None:
        try:
            override = json.loads(throughput_file.read_text())
            table = {
                kind: {**THROUGHPUT.get(kind, {}), **{k: tuple(v) for k, v in sizes.items()}}
                for kind, sizes in {**{k: {} for k in THROUGHPUT}, **override}.items()
            }
        except (ValueError, AttributeError, TypeError) as e:
            raise ConfigError(
                f"--throughput {throughput_file}: expected JSON "
                '{"h100": {"7": [tokens_per_s, "source"]}}; ' + str(e)
            ) from None
    measured = measured_bpt = None
    if pilot is not None:
        measured, measured_bpt = pilot_lengths(params, pilot, reports / "pilot-rollins")
    plan = make_plan(
        params,
        gpu=gpu,
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        table=table,
        pilot_lengths=measured,
        pilot_bytes_per_token=measured_bpt,
        train_problems=train_problems,
    )
    print_plan(plan)
    print(f"wrote {write_plan(plan, reports)}")
    return plan
