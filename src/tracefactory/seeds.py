"""Stable seeds and row ids: pure functions of their inputs, never of where or when work ran.

``hash()`` is salted per process, so it would give a different seed on every actor; these use
SHA-256 of a canonical JSON encoding of the parts instead.

Seeds used by the stages (``run`` is params.yaml ``seed``):

- roll-in sample: ``derive_seed(run, "rollin", problem_id, sample_index)``
- its policy: ``unit_interval(run, "policy", problem_id, sample_index)`` against the pool weights
- its branch points: ``derive_seed(run, "branch", rollin_id)``
- roll-out sample: ``derive_seed(run, "rollout", rollin_id, cut_index, sample_index)``

Keys hashed as plain strings (``text_seed``): a problem's value-model split
(``"value-split:<problem_id>"``), the toy task's split bucket (the expression) and its
per-split generator (``"toyworld/<seed>/<split>"``).
"""

from __future__ import annotations

import hashlib
import json

_SEED_BITS = 63  # fits int64 (the seed column) and torch.Generator.manual_seed


def _digest(parts: tuple) -> bytes:
    text = json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).digest()


def derive_seed(run_seed: int, *parts: str | int) -> int:
    """A 63-bit seed from the run seed and the parts naming one sample."""
    return int.from_bytes(_digest((run_seed, *parts))[:8], "big") >> (64 - _SEED_BITS)


def unit_interval(run_seed: int, *parts: str | int) -> float:
    """A number in [0, 1) drawn from the run seed and the parts (for weighted choices)."""
    return derive_seed(run_seed, *parts) / 2**_SEED_BITS


def text_seed(text: str) -> int:
    """A 64-bit number from SHA-256 of a plain string (its first 8 bytes, big-endian).

    For keys that were hashed as plain text before ``derive_seed`` existed: changing them to the
    JSON encoding would move every problem's split and every toy problem.
    """
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def row_id(*parts: str | int) -> str:
    """Stable row id (16 hex digits) of a row's inputs, as the schemas' ``*_id`` columns say."""
    return _digest(parts).hex()[:16]
