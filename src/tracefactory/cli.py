"""The ``tracefactory`` command: one subcommand per pipeline stage, each what ``dvc.yaml`` calls.

Every stage subcommand takes ``--params`` (default ``params.yaml``) and ``--set key=value``
overrides, loads and validates its section, runs the stage, and writes
``reports/<stage>/metrics.json``. Logic lives in the stage modules; this file only wires them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from tracefactory.config import Params, apply_profile, load_params
from tracefactory.errors import TracefactoryError

app = typer.Typer(
    help=(
        "Build and label reasoning-trace datasets for value models (problems -> rollins -> "
        "rollouts -> verdicts -> labels -> dataset), then train the value model and evaluate "
        "value-guided search. `dvc repro` runs the stages in order; each is also a subcommand here."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
params_app = typer.Typer(help="Show, check and apply parameter profiles.", no_args_is_help=True)
app.add_typer(params_app, name="params")

ParamsPath = Annotated[
    Path, typer.Option("--params", help="Params file (the embedded default is params.yaml).")
]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a param: --set rollin.samples_per_problem=4 (repeatable)."),
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


def main() -> None:
    """Entry point: run the app, printing tracefactory's own errors without a traceback."""
    _setup_logging()
    try:
        app()
    except TracefactoryError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
