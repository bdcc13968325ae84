"""The recipes: training the value model and evaluating value-guided search, each one module read
top to bottom as a script, shipped in the package so an installed ``tracefactory train`` /
``tracefactory evaluate`` runs them anywhere.

Run one as ``tracefactory train`` / ``tracefactory evaluate``, as
``python -m tracefactory.recipes.train_value_model``, or from a checkout as
``python train/train_value_model.py`` (``torchrun ... train/train_value_model.py`` for DDP). Every
way takes the same ``--params FILE`` and repeatable ``--set section.key=value`` overrides; this
module holds that parsing, and the script entry point, once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from tracefactory.errors import TracefactoryError
from tracefactory.params import Params, load_params
from tracefactory.stats import setup_logging

FRESH_HELP = "Recompute every shard, even those a finished earlier run left (see docs/pipeline.md)."


@dataclass(frozen=True)
class RecipeArgs:
    """What a recipe's command line asks for."""

    params: Params
    fresh: bool = False  # recompute every shard of the recipe's stage table, finished or not


def recipe_args(
    argv: list[str] | None, description: str, example: str, has_table: bool = False
) -> RecipeArgs:
    """The params a recipe runs with: ``--params`` (default ``params.yaml``) and its overrides,
    and ``--fresh`` for a recipe that writes a stage table (``has_table``).

    Overrides are ``--set section.key=value`` (repeatable); bare ``section.key=value`` arguments
    are accepted too. They apply in the order given, bare ones first: the last value of a key wins.

    Raises:
        ConfigError: naming the bad key and value.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help=f"override a param, e.g. --set {example} (repeatable)",
    )  # fmt: skip
    if has_table:
        parser.add_argument("--fresh", action="store_true", help=FRESH_HELP)
    parser.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    params = load_params(args.params, [*args.overrides, *args.sets])
    return RecipeArgs(params, fresh=getattr(args, "fresh", False))


def run_script(main: Callable[[list[str]], object]) -> None:
    """Run a recipe's ``main`` as a script: the shared log format, and an expected failure as one
    ``error:`` line with exit code 2, as the ``tracefactory`` command does."""
    setup_logging()
    try:
        main(sys.argv[1:])
    except TracefactoryError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
