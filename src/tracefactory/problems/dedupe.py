"""Duplicate detection: exact (same problem id) and, optionally, near duplicates by MinHash.

Exact duplicates share a normalized text (``clean.normalize_text``), hence a problem id. Near
duplicates (a reworded number, an extra sentence) are pairs whose word-shingle Jaccard similarity,
estimated by MinHash over ``_PERMUTATIONS`` hash functions and found through LSH banding, reaches
the threshold. The first occurrence (source order, then row order) is always the one kept.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl

from tracefactory.problems.decontaminate import words

_PERMUTATIONS = 64
_BANDS = 16  # 16 bands of 4 rows: pairs with Jaccard >= ~0.5 very likely become candidates
_SEED = 20250523


def exact_duplicates(keys: pl.Series, ids: pl.Series) -> pl.DataFrame:
    """Rows whose id appeared earlier: ``key, duplicate_of`` (the key of the first occurrence)."""
    frame = pl.DataFrame({"key": keys, "problem_id": ids})
    first = frame.unique("problem_id", keep="first", maintain_order=True).rename(
        {"key": "duplicate_of"}
    )
    return (
        frame.join(first, on="problem_id")
        .filter(pl.col("key") != pl.col("duplicate_of"))
        .select("key", "duplicate_of")
    )


def _signatures(frame: pl.DataFrame, shingle_words: int) -> np.ndarray:
    """MinHash signatures (rows x permutations) of ``frame['problem']`` word shingles."""
    joined = [pl.col("word").shift(-k).over("slot") for k in range(shingle_words)]
    shingles = (
        frame.select(pl.int_range(pl.len()).alias("slot"), words(pl.col("problem")).alias("word"))
        .explode("word")
        .with_columns(pl.concat_str(joined, separator=" ").alias("shingle"))
        .with_columns(pl.col("shingle").fill_null(pl.col("word")).fill_null(""))
        .group_by("slot", maintain_order=True)
        .agg(pl.col("shingle").drop_nulls())
        .sort("slot")
    )
    hashed = shingles.explode("shingle").with_columns(pl.col("shingle").hash(seed=_SEED))
    slots, values = hashed["slot"].to_numpy(), hashed["shingle"].to_numpy().astype(np.uint64)
    starts = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]])
    rng = np.random.default_rng(_SEED)
    a = rng.integers(1, 2**63, _PERMUTATIONS, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, _PERMUTATIONS, dtype=np.uint64)
    signatures = np.empty((len(starts), _PERMUTATIONS), dtype=np.uint64)
    with np.errstate(over="ignore"):  # multiply-add modulo 2**64 is the hash family
        for i in range(_PERMUTATIONS):
            signatures[:, i] = np.minimum.reduceat(values * a[i] + b[i], starts)
    return signatures


def near_duplicates(frame: pl.DataFrame, threshold: float, shingle_words: int) -> pl.DataFrame:
    """Rows nearly equal to an earlier kept row: ``key, duplicate_of, similarity``.

    Args:
        frame: rows ``key, problem`` in priority order (earlier rows are kept).
        threshold: estimated Jaccard similarity of word shingles counted as a duplicate.
        shingle_words: words per shingle.
    """
    key_type = frame.schema["key"]
    empty = pl.DataFrame(
        schema={"key": key_type, "duplicate_of": key_type, "similarity": pl.Float64}
    )
    if frame.height < 2:
        return empty
    signatures = _signatures(frame, shingle_words)
    rows_per_band = _PERMUTATIONS // _BANDS
    candidates: dict[int, set[int]] = defaultdict(set)  # later row -> earlier rows
    for band in range(_BANDS):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        part = signatures[:, band * rows_per_band : (band + 1) * rows_per_band]
        for row, signature in enumerate(part):
            buckets[signature.tobytes()].append(row)
        for members in buckets.values():
            for position in range(1, len(members)):
                candidates[members[position]].update(members[:position])
    keys, dropped, found = frame["key"].to_list(), set(), []
    for later in sorted(candidates):
        for earlier in sorted(candidates[later]):
            if earlier in dropped:
                continue
            similarity = float(np.mean(signatures[later] == signatures[earlier]))
            if similarity >= threshold:
                dropped.add(later)
                found.append((keys[later], keys[earlier], similarity))
                break
    if not found:
        return empty
    return pl.DataFrame(found, schema=empty.schema, orient="row")
