"""n-gram decontamination: a shared 8-gram drops a problem and names the benchmark."""

import polars as pl

from tracefactory.problems.decontaminate import benchmark_index, find_contamination

BENCH = pl.DataFrame(
    {
        "benchmark": ["aime", "hmmt"],
        "benchmark_row": [0, 0],
        "problem": [
            "Every morning Aya goes for a 9-kilometer-long walk and stops at a coffee shop.",
            "Compute the sum of the positive divisors of 9! that have units digit 1.",
        ],
    }
)


def problems(texts: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"key": list(range(len(texts))), "problem": texts})


def test_shared_8gram_is_found_with_its_benchmark():
    texts = [
        "Bob: every morning aya goes for a 9-kilometer-long walk and stops. Find x.",
        "Let n be such that the sum of the positive divisors of 9! that have units digit 1 is n.",
        "Every morning Aya goes for a 9-kilometer-long run.",  # 7 shared tokens, then different
    ]
    hits = find_contamination(problems(texts), benchmark_index(BENCH, 8), 8)
    assert hits.sort("key")["key"].to_list() == [0, 1]
    assert hits.sort("key")["benchmark"].to_list() == ["aime", "hmmt"]
    assert hits.filter(pl.col("key") == 0)["gram"][0].startswith("every morning aya")


def test_words_mode_sees_through_latex_markup():
    text = ["Every morning $Aya$ goes for a $9$-kilometer-long walk, then rests."]
    assert find_contamination(problems(text), benchmark_index(BENCH, 8), 8).height == 0
    index = benchmark_index(BENCH, 8, "words")
    assert find_contamination(problems(text), index, 8, "words").height == 1


def test_short_benchmark_problems_are_not_indexed():
    short = BENCH.with_columns(pl.lit("Find x.").alias("problem"))
    assert benchmark_index(short, 8).height == 0
