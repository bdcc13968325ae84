"""The ``tracefactory`` command: one subcommand per pipeline stage, each what ``dvc.yaml`` calls.

Every stage subcommand takes ``--params`` (default ``params.yaml``), ``--set section.key=value``
overrides and ``--reports`` (default ``reports/<stage>``); it loads and validates the params,
builds the stage from them (``tracefactory.stages.STAGES``), runs it (``run_stage``; ``--fresh``
recomputes finished shards too), and writes the stage's ``report`` to ``<reports>/metrics.json``
and its ``summary`` to ``<reports>/summary.json`` (the few numbers ``dvc metrics show``
compares). ``train`` and ``evaluate`` run their recipe (``tracefactory.recipes``), which writes
the same two files. Logic lives in the stage modules; this file only wires them. An expected
failure (bad input, a missing or corrupt table, Ctrl-C) prints one line and exits non-zero;
``--debug`` shows its traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from typer._click.exceptions import ClickException

from tracefactory import __version__
from tracefactory.cli_errors import usage_error_lines
from tracefactory.errors import TracefactoryError
from tracefactory.grading.compare import GraderMode
from tracefactory.grading.extract import ThinkingFormat
from tracefactory.params import (
    Params,
    apply_profile,
    describe_params,
    load_params,
    params_json,
    resolve_profile,
)
from tracefactory.recipes import FRESH_HELP
from tracefactory.stats import setup_logging, write_metrics
from tracefactory.summaries import dataset_summary, write_reports
from tracefactory.toyworld.cli import tiny_policy_app

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
params_app = typer.Typer(
    help="Show the params, or apply a profile from pipelines/ to params.yaml.", no_args_is_help=True
)
app.add_typer(params_app, name="params")
app.add_typer(tiny_policy_app, name="tiny-policy")

ParamsPath = Annotated[
    Path, typer.Option("--params", help="Params file (the embedded default is params.yaml).")
]
Fresh = Annotated[bool, typer.Option("--fresh", help=FRESH_HELP)]
REPORTS = Path("reports")
# --debug: an expected failure shows its traceback, not one line.
_DEBUG = {"on": os.environ.get("TRACEFACTORY_DEBUG") == "1"}


def _overrides(example: str) -> object:
    """The ``--set`` option, with an example of a key that belongs to the command's stage."""
    return Annotated[
        list[str] | None,
        typer.Option("--set", help=f"Override a param (repeatable), e.g. --set {example}"),
    ]


def _reports(stage: str) -> object:
    return Annotated[Path, typer.Option(help=f"Folder for metrics and summary (reports/{stage}).")]


def run_table_stage(
    name: str, params: Path, overrides: list[str] | None, reports: Path, fresh: bool
) -> None:
    """What every table stage's subcommand does: load the params, build the stage, run it (on
    Ray when its section says ``use_ray``), write its reports and side outputs."""
    from tracefactory.budget import Budget
    from tracefactory.stage import run_stage
    from tracefactory.stages import STAGES

    config = load_params(params, overrides or [])
    stage = STAGES[name].from_params(config)
    # The spending limits (params `run`) apply to the generation stages.
    budget = Budget(config.run, name) if name in ("rollin", "rollout") else None
    ray_config = config.ray if stage.use_ray else None
    run = run_stage(stage, ray_config=ray_config, fresh=fresh, budget=budget)
    report = stage.report(run)
    write_reports(reports, report, stage.summary(report), run.side)


def _version(value: bool) -> None:
    if value:
        print(f"tracefactory {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an expected failure.")
    ] = False,
) -> None:
    _DEBUG["on"] = _DEBUG["on"] or debug  # options every command shares


@params_app.command("show")
def params_show(
    section: Annotated[
        str, typer.Argument(help="Only this section or key, e.g. rollin or rollin.sampling.")
    ] = "",
    params: ParamsPath = Path("params.yaml"),
    overrides: RolloutOverrides = None,
    as_json: Annotated[bool, typer.Option("--json", help="The resolved params as JSON.")] = False,
) -> None:
    """Print every key with its resolved value, its default and what it means, after validation."""
    resolved = load_params(params, overrides or [])
    print(params_json(resolved, section) if as_json else describe_params(resolved, section))


@params_app.command("apply")
def params_apply(
    profile: Annotated[
        str, typer.Argument(help="A profile file, or a name in pipelines/: smoke, paper, ...")
    ],
    params: ParamsPath = Path("params.yaml"),
) -> None:
    """Merge a profile into params.yaml (validated first), so `dvc repro` runs that configuration.

    `git diff params.yaml` shows what changed; `git checkout params.yaml` returns to the default.
    """
    path = resolve_profile(profile)
    apply_profile(params, path)
    print(f"applied {path} to {params}")


ProblemsOverrides, ProblemsReports = _overrides("problems.dedupe.near=true"), _reports("problems")
RollinOverrides, RollinReports = _overrides("rollin.samples_per_problem=8"), _reports("rollin")
RolloutOverrides, RolloutReports = _overrides("rollout.cuts_per_rollin=4"), _reports("rollout")
VerifyOverrides, VerifyReports = _overrides("verify.grader.timeout_s=10"), _reports("verify")
LabelOverrides, LabelReports = _overrides("label.val_fraction=0.2"), _reports("label")
DatasetOverrides, DatasetReports = _overrides("dataset.license=mit"), _reports("dataset")
PublishOverrides = _overrides("publish.repo_id=my-org/my-value-data")
TrainOverrides = _overrides("train.max_lr=3e-4")
EvaluateOverrides = _overrides("evaluate.search_seeds=4")
TrainReports = Annotated[
    Path | None,
    typer.Option(help="Folder for the reports (default: train.reports_dir, reports/train)."),
]
EvaluateReports = Annotated[
    Path | None,
    typer.Option(help="Folder for the reports (default: evaluate.output_dir, reports/evaluate)."),
]


@app.command()
def problems(
    params: ParamsPath = Path("params.yaml"),
    overrides: ProblemsOverrides = None,
    reports: ProblemsReports = REPORTS / "problems",
    fresh: Fresh = False,
) -> None:
    """Load, clean, dedupe, decontaminate and split the problem sources.

    Writes data/problems (schemas/problems.yaml), reports/problems/metrics.json (counts per
    source, drop reason, benchmark and split), summary.json and dropped.json (every dropped
    row with its reason and what it matched). Params: problems, seed. Runs in this process.
    """
    run_table_stage("problems", params, overrides, reports, fresh)


@app.command()
def rollin(
    params: ParamsPath = Path("params.yaml"),
    overrides: RollinOverrides = None,
    reports: RollinReports = REPORTS / "rollin",
    fresh: Fresh = False,
) -> None:
    """Sample k roll-ins per train problem from the policy pool (one Ray actor pool per policy).

    Writes data/rollins (schemas/rollins.yaml) and reports/rollin/{metrics,summary}.json. Params:
    rollin, seed, ray. A rerun skips finished shards.
    """
    run_table_stage("rollin", params, overrides, reports, fresh)


@app.command()
def rollout(
    params: ParamsPath = Path("params.yaml"),
    overrides: RolloutOverrides = None,
    reports: RolloutReports = REPORTS / "rollout",
    fresh: Fresh = False,
) -> None:
    """Cut branch points in every roll-in and continue each with the fixed roll-out policy.

    Writes data/rollouts (schemas/rollouts.yaml) and reports/rollout/{metrics,summary}.json.
    Params: rollout, seed, ray. A rerun skips finished shards.
    """
    run_table_stage("rollout", params, overrides, reports, fresh)


@app.command()
def verify(
    params: ParamsPath = Path("params.yaml"),
    overrides: VerifyOverrides = None,
    reports: VerifyReports = REPORTS / "verify",
    fresh: Fresh = False,
) -> None:
    """Grade every roll-in and roll-out against its problem's gold answer.

    Reads data/problems, data/rollins, data/rollouts; writes data/verdicts (label 0 wrong, 1
    correct, 2 incomplete, with the reason) and reports/verify/{metrics,summary}.json (counts per
    reason). Params: verify (grader settings, workers), ray.
    """
    run_table_stage("verify", params, overrides, reports, fresh)


@app.command()
def label(
    params: ParamsPath = Path("params.yaml"),
    overrides: LabelOverrides = None,
    reports: LabelReports = REPORTS / "label",
    fresh: Fresh = False,
) -> None:
    """Join roll-ins, roll-outs and verdicts into per-token value labels.

    Writes data/labels (schemas/labels.yaml: one row per graded roll-out of a kept problem, with
    its token ids, per-token targets and branch-point MC value) and reports/label/{metrics,
    summary}.json (rows, labelled tokens, drops by reason). Params: label. Runs in this process;
    a rerun skips finished shards.
    """
    run_table_stage("label", params, overrides, reports, fresh)


def export(config: Params, reports: Path) -> None:
    """Build the dataset folder and write its reports (rows per config and split) and its run
    record (``run.json``: when, from which commit; not a DVC output, so a rebuild by hand leaves
    ``dvc status`` clean)."""
    from tracefactory.dataset.export import export_dataset
    from tracefactory.dataset.provenance import RUN_RECORD, run_record

    built = export_dataset(config.dataset, config)
    report = {"rows": built.rows}
    write_reports(reports, report, dataset_summary(report))
    write_metrics(reports / RUN_RECORD, run_record(built.code, config.dataset.output_dir))


@app.command()
def dataset(
    params: ParamsPath = Path("params.yaml"),
    overrides: DatasetOverrides = None,
    reports: DatasetReports = REPORTS / "dataset",
) -> None:
    """Build the dataset folder data/dataset: configs `default` and `openr1_vm`, card, figures.

    `datasets.load_dataset("data/dataset")` (or `..., "openr1_vm"`) loads it. Writes
    reports/dataset/{metrics,summary}.json (rows per config and split). Params: dataset (and the
    rest, recorded in the provenance file the card links).
    """
    export(load_params(params, overrides or []), reports)


@app.command()
def publish(
    params: ParamsPath = Path("params.yaml"),
    overrides: PublishOverrides = None,
    reports: DatasetReports = REPORTS / "dataset",
    build: Annotated[
        bool, typer.Option(help="Rebuild the folder first (--no-build pushes it as it is).")
    ] = True,
) -> None:
    """Build the dataset folder and push it to the Hub dataset repo `publish.repo_id`.

    With no repo configured, only builds the folder and says so. The token (HF_TOKEN or `hf auth
    login`) and the Hub are checked before anything is built or uploaded; the repo is created
    private unless `publish.private=false`; the upload resumes if interrupted.
    """
    from tracefactory.dataset.publish import connect, upload_dataset, upload_model

    config = load_params(params, overrides or [])
    wanted = config.publish.repo_id or config.publish.model_repo_id
    session = connect() if wanted else None
    if session is not None and config.publish.model_repo_id:
        url = upload_model(config.publish.model_dir, config.publish, session)
        print(f"pushed {config.publish.model_dir} to {url}")
    if build:
        export(config, reports)
    if not config.publish.repo_id:
        print(
            f"publish.repo_id is not set: nothing pushed ({config.dataset.output_dir} is the "
            f"dataset; set e.g. --set publish.repo_id=org/name to push it to the Hub)"
        )
        return
    url = upload_dataset(config.dataset.output_dir, config.publish, session)
    print(f"pushed {config.dataset.output_dir} to {url}")


@app.command()
def train(
    params: ParamsPath = Path("params.yaml"),
    overrides: TrainOverrides = None,
    reports: TrainReports = None,
) -> None:
    """Train the value model on data/dataset (the recipe tracefactory.recipes.train_value_model).

    Writes models/value_model (a Hugging Face folder), reports/train/metrics.json (loss, Brier,
    ECE, AUROC, within-problem pairwise accuracy, each beside the constant baseline), summary.json
    and plot data. Params: train. Resumes from its checkpoint. For several GPUs:
    `torchrun --nproc_per_node=8 train/train_value_model.py --params params.yaml`.
    """
    run_recipe("train_value_model", params, overrides, reports and f"train.reports_dir={reports}")


@app.command()
def evaluate(
    params: ParamsPath = Path("params.yaml"),
    overrides: EvaluateOverrides = None,
    reports: EvaluateReports = None,
    fresh: Fresh = False,
) -> None:
    """Evaluate value-guided search (VGS, DVTS, random control) against pass@1, MV, BoN and WMV.

    Reads data/problems (test split) or configured benchmark files, the policy and
    models/value_model; writes data/evaluate (every sample) and reports/evaluate/metrics.json
    (benchmark -> method -> accuracy, 95% CIs, tokens, FLOPs; `paired` differences),
    summary.json, run.json, plots/accuracy.json, figures/*.png and report.md. Params: evaluate,
    seed. Runs the recipe tracefactory.recipes.evaluate_search; a rerun resumes from
    data/evaluate.
    """
    from tracefactory.run_summary import render_run_summary

    reports_dir = reports and f"evaluate.output_dir={reports}"
    config = run_recipe(
        "evaluate_search", params, overrides, reports_dir, ["--fresh"] if fresh else []
    )
    print(render_run_summary(config))


def run_recipe(
    name: str,
    params: Path,
    overrides: list[str] | None,
    reports: str | None,
    options: list[str] | None = None,
) -> Params:
    """Run the recipe ``tracefactory.recipes.<name>`` with the command's params, overrides (and
    ``reports``, the override of its reports folder), as ``python train/<name>.py`` would; return
    the params it ran with."""
    overrides = [*(overrides or []), *([reports] if reports else [])]
    config = load_params(params, overrides)  # a bad value fails before the recipe imports torch
    recipe = importlib.import_module(f"tracefactory.recipes.{name}")
    recipe.main(
        ["--params", str(params), *(o for s in overrides for o in ("--set", s)), *(options or [])]
    )
    return config


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
    mode: Annotated[
        GraderMode, typer.Option(help="tracefactory (ours) or official (the paper's evaluation).")
    ] = GraderMode.TRACEFACTORY,
) -> None:
    """Grade responses against gold answers; print one JSON verdict (label, reason, answer) each.

    Label 1 correct, 0 finished but wrong, 2 incomplete. Example:
    `tracefactory grade --gold 16 --response 'so </think> \\boxed{016}'`.
    """
    from tracefactory.grading.cli import grade_cli

    grade_cli(gold, response, pairs, thinking, truncated, workers, timeout_s, mode=mode)


@app.command()
def show(
    table: Annotated[Path, typer.Argument(help="A table folder, e.g. data/labels, data/evaluate.")],
    rows: Annotated[int, typer.Option(min=0, help="How many rows to print.")] = 5,
    where: Annotated[
        str | None, typer.Option(help='SQL condition on the columns, e.g. "label = 1".')
    ] = None,
) -> None:
    """Print rows of a table with every column, token ids decoded by the table's tokenizer."""
    from tracefactory.show import show_table

    print(show_table(table, rows, where))


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="The project folder (created).")] = Path("."),
) -> None:
    """Write a DVC project for the installed package: dvc.yaml, params.yaml, the profiles.

    Then `tracefactory params apply smoke && dvc repro` runs it (`git init` and `dvc init` are
    done where the folder is not a repository yet).
    """
    from tracefactory.init import init_project

    print("\n".join(init_project(folder)))


@app.command()
def plan(
    params: ParamsPath = Path("params.yaml"),
    profile: Annotated[Path | None, typer.Option(help="Profile applied over params.")] = None,
    gpu: Annotated[str, typer.Option(help="GPU kind of the throughput table.")] = "h100",
    nodes: Annotated[int, typer.Option(min=1, help="Nodes of the cluster.")] = 1,
    gpus_per_node: Annotated[int, typer.Option(min=1, help="GPUs per node.")] = 8,
    throughput: Annotated[Path | None, typer.Option(help="JSON overriding throughputs.")] = None,
    pilot: Annotated[int | None, typer.Option(min=1, help="Measure lengths on N problems.")] = None,
    problems: Annotated[int | None, typer.Option(min=1, help="Train problems.")] = None,
    reports: Annotated[Path, typer.Option(help="Folder of plan.json.")] = REPORTS / "plan",
) -> None:
    """Print what a profile will cost (rows, tokens, GPU-hours, wall time, disk) before it runs;
    write reports/plan/plan.json. Sources and assumptions: docs/scale.md."""
    from tracefactory.plan import run_plan

    run_plan(params, profile, gpu, nodes, gpus_per_node, throughput, pilot, reports, problems)


def _fail(message: str, code: int) -> None:
    """Print an expected failure as one line (the traceback with --debug) and exit ``code``."""
    if _DEBUG["on"]:
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def main() -> None:
    """Entry point; expected failures exit non-zero with one line (see the module docstring)."""
    setup_logging()
    interrupted = "interrupted: finished shards are kept; rerun the same command to resume"
    try:
        code = app(standalone_mode=False)  # typer returns 130 for Ctrl-C, an Exit's code else
    except ClickException as e:  # a usage error: what is wrong, and where the help is
        lines = usage_error_lines(e)
        if lines is None:
            e.show()
        print("\n".join(lines or []), file=sys.stderr)
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _fail(interrupted, 130)
    except TracefactoryError as e:
        _fail(str(e), 2)
    except OSError as e:
        _fail(f"{e} (check the path, its permissions and the free disk space)", 2)
    if code == 130:
        _fail(interrupted, 130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
