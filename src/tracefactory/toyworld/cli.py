"""The ``tracefactory tiny-policy`` commands: rebuild the embedded default's tiny policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

tiny_policy_app = typer.Typer(
    help="The embedded default's tiny policy (shipped in the package).", no_args_is_help=True
)


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
        int, typer.Option(help="Optimizer steps (2,000: about 11 min on one core).")
    ] = 2000,
    eval_problems: Annotated[
        int, typer.Option(help="Held-out problems measured for the card.")
    ] = 200,
    eval_samples: Annotated[int, typer.Option(help="Samples per measured problem.")] = 8,
) -> None:
    """Train the tiny policy from scratch on CPU and write its model card (measured properties).

    Deterministic for a seed. The shipped policy was made with the defaults; retraining it
    changes every downstream table (the stages see the new weights and start over).
    """
    from pydantic import ValidationError

    from tracefactory.config import one_line_validation_error
    from tracefactory.errors import ConfigError
    from tracefactory.toyworld import POLICY_DIR, WEAK_POLICY_DIR
    from tracefactory.toyworld.train_policy import TinyPolicyTrainConfig, train_and_write_cards

    try:
        config = TinyPolicyTrainConfig(seed=seed, steps=steps)
    except ValidationError as e:
        raise ConfigError(f"tiny-policy train: {one_line_validation_error('', e)}") from e
    card = train_and_write_cards(
        config, out or POLICY_DIR, weak_out or WEAK_POLICY_DIR, eval_problems, eval_samples
    )
    print(json.dumps(card["test"], indent=2))
