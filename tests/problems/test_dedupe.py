"""Duplicates: exact by normalized text, near by MinHash; the first occurrence is kept."""

import polars as pl

from tracefactory.problems.clean import problem_id
from tracefactory.problems.dedupe import exact_duplicates, near_duplicates

BASE = (
    "A bag holds 4 red, 5 blue and 6 green marbles. Two marbles are drawn at random without "
    "replacement. What is the probability that both marbles have the same colour as each other?"
)


def test_exact_duplicates_point_to_first_copy():
    texts = ["Find $x$.", "find x.", "Find y.", "FIND  X."]
    ids = pl.Series([problem_id(t) for t in texts])
    dups = exact_duplicates(pl.Series([10, 11, 12, 13]), ids).sort("key")
    assert dups.rows() == [(11, 10), (13, 10)]


def test_near_duplicate_with_one_word_changed_is_found():
    frame = pl.DataFrame(
        {
            "key": [0, 1, 2],
            "problem": [
                BASE,
                "Compute the number of positive integers below 1000 that are squares of primes.",
                BASE.replace("at random", "uniformly"),
            ],
        }
    )
    near = near_duplicates(frame, threshold=0.6, shingle_words=3)
    assert near["key"].to_list() == [2]
    assert near["duplicate_of"].to_list() == [0]
    assert near_duplicates(frame.head(2), threshold=0.6, shingle_words=3).height == 0
