"""Branch points: where a roll-in is cut before the roll-out policy continues it (paper, sec. 3).

A roll-in with ``L`` generated tokens has the candidate cut positions ``p = 1 .. L-1`` (``p``
roll-in tokens are kept; at least one is kept and at least one is replaced by the roll-out). ``c``
distinct positions are drawn without replacement, with probability

    uniform:       P(p) = 1 / (L - 1)
    sqrt:          P(p) = sqrt(p) / sum_{q=1}^{L-1} sqrt(q)
    inverse_sqrt:  P(p) = p^(-1/2) / sum_{q=1}^{L-1} q^(-1/2)

The paper says only "square-root-weighted"; ``sqrt`` reads it literally (weight grows as the square
root of the position, so later cuts, with shorter roll-outs, are more frequent, yet early prefixes
keep a fair share); ``inverse_sqrt`` is the other reading, favouring early cuts. A roll-in with
fewer than ``c`` candidates gets all of them; one with none (``L < 2``) gets no branch point.
Positions are returned sorted; a position's rank is its ``cut_index``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from tracefactory.errors import ConfigError

CutDistribution = Literal["uniform", "sqrt", "inverse_sqrt"]


def cut_weights(num_tokens: int, distribution: CutDistribution) -> np.ndarray:
    """Normalised probabilities of the positions ``1 .. num_tokens-1`` (empty if none)."""
    positions = np.arange(1, max(num_tokens, 1), dtype=np.float64)
    if distribution == "uniform":
        weights = np.ones_like(positions)
    elif distribution == "sqrt":
        weights = np.sqrt(positions)
    elif distribution == "inverse_sqrt":
        weights = 1.0 / np.sqrt(positions)
    else:
        raise ConfigError(
            f"unknown cut distribution {distribution!r}; allowed: uniform, sqrt, inverse_sqrt"
        )
    return weights / weights.sum() if len(weights) else weights


def draw_cut_positions(
    num_tokens: int, count: int, distribution: CutDistribution, seed: int
) -> list[int]:
    """``count`` distinct cut positions in ``1 .. num_tokens-1``, sorted, drawn with ``seed``.

    Args:
        num_tokens: generated tokens of the roll-in.
        count: branch points wanted (fewer come back when there are fewer positions).
        distribution: ``uniform``, ``sqrt`` or ``inverse_sqrt`` (see the module docstring).
        seed: the roll-in's branch seed (``seeds.derive_seed(run, "branch", rollin_id)``).
    """
    probabilities = cut_weights(num_tokens, distribution)
    candidates = len(probabilities)
    if candidates == 0:
        return []
    if count >= candidates:
        return list(range(1, num_tokens))
    rng = np.random.default_rng(seed)
    drawn = rng.choice(np.arange(1, num_tokens), size=count, replace=False, p=probabilities)
    return sorted(int(p) for p in drawn)
