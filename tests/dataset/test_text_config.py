"""The dataset's ``text`` config: every ``default`` row, decoded, beside its problem and answer."""

import datasets
import polars as pl
from pipeline_tables import dataset_config

from tracefactory.dataset.export import export_dataset, token_bounded
from tracefactory.io import TableReader
from tracefactory.models import load_tokenizer


def test_text_rows_read_the_default_rows_with_their_problem_and_gold_answer(labelled):
    export_dataset(dataset_config(labelled))
    folder = str(labelled / "dataset")
    text = datasets.load_dataset(folder, "text")
    default = datasets.load_dataset(folder)
    assert {s: text[s].num_rows for s in text} == {s: default[s].num_rows for s in default}
    problems = pl.from_arrow(TableReader(labelled / "problems").read())
    decode = load_tokenizer("tracefactory:tiny").decode
    by_id = {row["rollout_id"]: row for row in default["validation"]}
    for row in text["validation"]:
        source = by_id[row["rollout_id"]]
        start = source["supervised_start"]
        assert row["roll_in"] == decode(source["input_ids"][:start])
        assert row["roll_out"] == decode(source["input_ids"][start:])
        assert (row["label"], row["branch_value"]) == (source["label"], source["branch_value"])
        problem = problems.filter(pl.col("problem_id") == row["problem_id"]).row(0, named=True)
        assert (row["problem"], row["gold_answer"]) == (problem["problem"], problem["answer"])


def test_the_card_says_what_branch_value_is_worth_here(labelled):
    card = export_dataset(dataset_config(labelled)).folder / "README.md"
    counts = TableReader(labelled / "labels").scan().select("branch_count").collect()
    assert counts["branch_count"].max() == 2  # two roll-outs per branch point in these tables
    assert "(`branch_count` of them, up to 2 here): a lower-variance target" in card.read_text()


def test_token_bounded_slices_keep_every_row_in_order_within_the_bound():
    lengths = [3, 4, 1, 9, 2, 2, 2, 5]  # 9 alone exceeds the bound: a slice of its own
    frame = pl.DataFrame({"row": range(len(lengths)), "input_ids": [[7] * n for n in lengths]})
    parts = list(token_bounded(frame, 6))
    assert [p["row"].to_list() for p in parts] == [[0], [1, 2], [3], [4, 5, 6], [7]]
    assert pl.concat(parts).equals(frame)
