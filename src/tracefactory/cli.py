"""The ``tracefactory`` command: one subcommand per pipeline stage, each what ``dvc.yaml`` calls.

Every stage subcommand takes ``--params`` (default ``params.yaml``) and ``--set key=value``
overrides, loads and validates its section, runs the stage, and writes
``reports/<stage>/metrics.json``. Logic lives in the stage modules; this file only wires them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import runpy
import sys
from pathlib import Path
from typing import Annotated

import typer

from tracefactory.errors import ConfigError, TracefactoryError
from tracefactory.grading.extract import ThinkingFormat
from tracefactory.params import Params, apply_profile, load_params
from tracefactory.stage import run_stage
from tracefactory.stats import write_metrics

app = typer.Typer(
    help=(
        "Build and label reasoning-trace datasets for value models (problems -> rollins -> "
        "rollouts -> verdicts -> labels -> dataset), then train the value model and evaluate "
        "value-guided search. `dvc repro` runs the stages in order; each is also a subcommand here."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
params_app = typer.Typer(help="Show, check and apply parameter profiles.", no_args_is_help=True)
app.add_typer(params_app, name="params")
tiny_policy_app = typer.Typer(
    help="The embedded default's tiny policy (shipped in the package).", no_args_is_help=True
)
app.add_typer(tiny_policy_app, name="tiny-policy")

ParamsPath = Annotated[
    Path, typer.Option("--params", help="Params file (the embedded default is params.yaml).")
]
Overrides = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a param: --set rollin.samples_per_problem=4 (repeatable)."
    ),
]


def _setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("TRACEFACTORY_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Offline by default: the Hub is reached only by commands that are asked to (publish, a Hub id).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load(params_path: Path, overrides: list[str] | None) -> Params:
    """Load params for a subcommand, turning config errors into a clean exit."""
    return load_params(params_path, overrides or [])


@params_app.command("show")
def params_show(params: ParamsPath = Path("params.yaml"), overrides: Overrides = None) -> None:
    """Print the fully resolved params (defaults filled in) as JSON, after validation."""
    print(json.dumps(load(params, overrides).model_dump(mode="json"), indent=2))


@params_app.command("apply")
def params_apply(
    profile: Annotated[Path, typer.Argument(help="A profile, e.g. pipelines/paper.yaml.")],
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Merge a profile into params.yaml (validated first), so `dvc repro` runs that configuration.

    `git diff params.yaml` shows what changed; `git checkout params.yaml` returns to the default.
    """
    apply_profile(params, profile)
    print(f"applied {profile} to {params}")


@app.command()
def problems(
    params: ParamsPath = Path("params.yaml"),
    overrides: Overrides = None,
    reports: Annotated[
        Path, typer.Option(help="Folder for metrics.json and dropped.jsonl.")
    ] = Path("reports/problems"),
) -> None:
    """Load, clean, dedupe, decontaminate and split the problem sources.

    Writes data/problems (schemas/problems.yaml), reports/problems/metrics.json (counts per
    source, drop reason, benchmark and split) and reports/problems/dropped.jsonl (every dropped
    row with its reason and what it matched). Params: problems, seed. Runs in this process.
    """
    from tracefactory.problems.stage import ProblemsStage, report_from_counts

    config = load(params, overrides)
    stage = ProblemsStage(config.problems, config.seed)
    summary = run_stage(stage, config.problems.output_dir)
    write_metrics(reports / "metrics.json", report_from_counts(summary.stats, config.problems))
    if stage.selection is not None:
        stage.selection.dropped.write_ndjson(reports / "dropped.jsonl")


@app.command()
def rollin(
    params: ParamsPath = Path("params.yaml"),
    overrides: Overrides = None,
    reports: Annotated[Path, typer.Option(help="Folder for metrics.json.")] = Path(
        "reports/rollin"
    ),
) -> None:
    """Sample k roll-ins per train problem from the policy pool (one Ray actor pool per policy).

    Writes data/rollins (schemas/rollins.yaml) and reports/rollin/metrics.json. Params: rollin,
    seed, ray. A rerun skips finished shards.
    """
    from tracefactory.generation.metrics import generation_metrics
    from tracefactory.generation.rollin import run_rollin

    config = load(params, overrides)
    ray_config = config.ray if config.rollin.use_ray else None
    summary = run_rollin(config.rollin, config.seed, ray_config)
    write_metrics(reports / "metrics.json", generation_metrics(summary, config.rollin.output_dir))


@app.command()
def rollout(
    params: ParamsPath = Path("params.yaml"),
    overrides: Overrides = None,
    reports: Annotated[Path, typer.Option(help="Folder for metrics.json.")] = Path(
        "reports/rollout"
    ),
) -> None:
    """Cut branch points in every roll-in and continue each with the fixed roll-out policy.

    Writes data/rollouts (schemas/rollouts.yaml) and reports/rollout/metrics.json. Params:
    rollout, seed, ray. A rerun skips finished shards.
    """
    from tracefactory.generation.metrics import generation_metrics
    from tracefactory.generation.rollout import run_rollout

    config = load(params, overrides)
    ray_config = config.ray if config.rollout.use_ray else None
    summary = run_rollout(config.rollout, config.seed, ray_config)
    write_metrics(reports / "metrics.json", generation_metrics(summary, config.rollout.output_dir))


@app.command()
def verify(params: ParamsPath = Path("params.yaml"), overrides: Overrides = None) -> None:
    """Grade every roll-in and roll-out against its problem's gold answer.

    Reads data/problems, data/rollins, data/rollouts; writes data/verdicts (label 0 wrong, 1
    correct, 2 incomplete, with the reason) and reports/verify/metrics.json (counts per reason).
    Params: verify (grader settings, workers), ray.
    """
    from tracefactory.grading.stage import VerifyStage

    config = load(params, overrides)
    section = config.verify
    ray = config.ray if section.use_ray else None
    summary = run_stage(VerifyStage(section), section.output_dir, ray)
    write_metrics(Path("reports") / "verify" / "metrics.json", dataclasses.asdict(summary))


@app.command()
def label(params: ParamsPath = Path("params.yaml"), overrides: Overrides = None) -> None:
    """Join roll-ins, roll-outs and verdicts into per-token value labels.

    Writes data/labels (schemas/labels.yaml: one row per graded roll-out of a kept problem, with
    its token ids, per-token targets and branch-point MC value) and reports/label/metrics.json
    (rows, labelled tokens, drops by reason). Params: label. Runs in this process; a rerun skips
    finished shards.
    """
    from tracefactory.labels.stage import LabelStage

    config = load(params, overrides)
    summary = run_stage(LabelStage(config.label), config.label.output_dir)
    write_metrics(Path("reports") / "label" / "metrics.json", dataclasses.asdict(summary))


@app.command()
def export(params: ParamsPath = Path("params.yaml"), overrides: Overrides = None) -> None:
    """Build the dataset folder data/dataset: configs `default` and `openr1_vm`, card, figures.

    `datasets.load_dataset("data/dataset")` (or `..., "openr1_vm"`) loads it. Writes
    reports/dataset/metrics.json (rows per config and split). Params: dataset (and the rest, cited
    in the card).
    """
    from tracefactory.dataset.export import export_dataset

    config = load(params, overrides)
    summary = export_dataset(config.dataset, config)
    write_metrics(Path("reports") / "dataset" / "metrics.json", {"rows": summary.rows})
    print(f"built {summary.folder}: rows {summary.rows}")


@app.command()
def publish(
    params: ParamsPath = Path("params.yaml"),
    overrides: Overrides = None,
    build: Annotated[
        bool, typer.Option(help="Rebuild the folder first (--no-build pushes it as it is).")
    ] = True,
) -> None:
    """Build the dataset folder and push it to the Hub dataset repo `publish.repo_id`.

    With no repo configured, only builds the folder and says so. The token (HF_TOKEN or `hf auth
    login`) and the Hub are checked before anything is built or uploaded; the repo is created
    private unless `publish.private=false`; the upload resumes if interrupted.
    """
    from tracefactory.dataset.export import export_dataset
    from tracefactory.dataset.publish import connect, upload_dataset

    config = load(params, overrides)
    session = connect() if config.publish.repo_id else None
    if build:
        summary = export_dataset(config.dataset, config)
        write_metrics(Path("reports") / "dataset" / "metrics.json", {"rows": summary.rows})
    if session is None:
        print(
            f"publish.repo_id is not set: nothing pushed ({config.dataset.output_dir} is the "
            f"dataset; set e.g. --set publish.repo_id=org/name to push it to the Hub)"
        )
        return
    url = upload_dataset(config.dataset.output_dir, config.publish, session)
    print(f"pushed {config.dataset.output_dir} to {url}")


@app.command()
def train(params: ParamsPath = Path("params.yaml"), overrides: Overrides = None) -> None:
    """Train the value model on data/labels: runs the recipe train/train_value_model.py.

    Writes models/value_model (a Hugging Face folder), reports/train/metrics.json (loss, Brier,
    ECE, AUROC, within-problem pairwise accuracy, each beside the constant baseline) and plot data.
    Params: train. Resumes from its checkpoint. For several GPUs:
    `torchrun --nproc_per_node=8 train/train_value_model.py --params params.yaml`.
    """
    recipe = Path("train") / "train_value_model.py"
    if not recipe.is_file():
        raise ConfigError(
            f"{recipe} not found: run from the repository root (recipes live in train/)"
        )
    namespace = runpy.run_path(str(recipe))
    namespace["main"](["--params", str(params), *(overrides or [])])


@app.command()
def evaluate(params: ParamsPath = Path("params.yaml"), overrides: Overrides = None) -> None:
    """Evaluate value-guided search (VGS, DVTS, random control) against pass@1, MV, BoN and WMV.

    Reads data/problems (test split) or configured benchmark files, the policy and
    models/value_model; writes data/evaluate (every sample) and reports/evaluate/metrics.json
    (benchmark -> method -> accuracy, 95% CIs, tokens, FLOPs; `paired` differences),
    plots/accuracy.json, PNGs and report.md.
    Params: evaluate, seed. Runs the recipe train/evaluate_search.py; resumes from data/evaluate.
    """
    recipe = Path("train") / "evaluate_search.py"
    if not recipe.is_file():
        raise ConfigError(
            f"{recipe} not found: run from the repository root (recipes live in train/)"
        )
    namespace = runpy.run_path(str(recipe))
    namespace["main"](["--params", str(params), *[f"--set={o}" for o in overrides or []]])


@app.command()
def grade(
    gold: Annotated[str | None, typer.Option(help="Gold answer (LaTeX, no \\boxed).")] = None,
    response: Annotated[str | None, typer.Option(help="Generated text to grade.")] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(help="JSONL with gold/response (optional truncated, finish_reason) per line."),
    ] = None,
    thinking: Annotated[
        ThinkingFormat,
        typer.Option(
            help="Where the thinking section is: r1_open (the prompt ends "
            "with `<think>`), r1, sky_t1, none, auto."
        ),
    ] = ThinkingFormat.R1_OPEN,
    truncated: Annotated[
        bool, typer.Option(help="The single response hit the length cap.")
    ] = False,
    workers: Annotated[int, typer.Option(help="Grader worker processes.")] = 2,
    timeout_s: Annotated[float, typer.Option(help="Hard limit per comparison, seconds.")] = 5.0,
) -> None:
    """Grade responses against gold answers; print one JSON verdict (label, reason, answer) each.

    Label 1 correct, 0 finished but wrong, 2 incomplete. Example:
    `tracefactory grade --gold 16 --response 'so </think> \\boxed{016}'`.
    """
    from tracefactory.grading.cli import grade_cli

    grade_cli(gold, response, pairs, thinking, truncated, workers, timeout_s)


@tiny_policy_app.command("train")
def tiny_policy_train(
    out: Annotated[
        Path | None, typer.Option(help="Policy folder (default: the shipped one).")
    ] = None,
    weak_out: Annotated[
        Path | None, typer.Option(help="Weaker mid-training checkpoint (default: shipped).")
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Training seed; the same seed gives the same weights.")
    ] = 0,
    steps: Annotated[
        int, typer.Option(help="Optimizer steps (1,000: about 7 min on one core).")
    ] = 1000,
    eval_problems: Annotated[
        int, typer.Option(help="Held-out problems measured for the card.")
    ] = 200,
    eval_samples: Annotated[int, typer.Option(help="Samples per measured problem.")] = 8,
) -> None:
    """Train the tiny policy from scratch on CPU and write its model card (measured properties).

    Deterministic for a seed. The shipped policy was made with the defaults; retraining it
    changes every downstream table (the stages see the new weights and start over).
    """
    from tracefactory.toyworld import POLICY_DIR, WEAK_POLICY_DIR
    from tracefactory.toyworld.train_policy import TinyPolicyTrainConfig, train_and_write_cards

    config = TinyPolicyTrainConfig(seed=seed, steps=steps)
    card = train_and_write_cards(
        config, out or POLICY_DIR, weak_out or WEAK_POLICY_DIR, eval_problems, eval_samples
    )
    print(json.dumps(card["test"], indent=2))


def main() -> None:
    """Entry point: run the app, printing tracefactory's own errors without a traceback."""
    _setup_logging()
    try:
        app()
    except TracefactoryError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
