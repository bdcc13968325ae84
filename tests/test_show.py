"""``tracefactory show``: rows of a real table, token ids decoded with the recorded tokenizer."""

from __future__ import annotations

import pytest

from tracefactory.errors import ConfigError
from tracefactory.io import ShardWriter
from tracefactory.models import load_tokenizer, tokenizer_hash
from tracefactory.show import show_table

TEXTS = ["1+2=? (mod 7)\n<think>\n1+2=3\n</think>\n\\boxed{3}", "3*3=? (mod 7)\n<think>\n"]


def _rollins(folder, recorded_hash: str | None = None):
    tokenizer = load_tokenizer("tracefactory:tiny")
    rows = [
        dict(
            rollin_id=f"r{i}",
            problem_id=f"p{i}",
            policy="tiny",
            sample_index=0,
            seed=i,
            prompt_ids=tokenizer.encode("q"),
            token_ids=tokenizer.encode(text),
            finish_reason="stop" if i == 0 else "length",
        )
        for i, text in enumerate(TEXTS)
    ]
    metadata = {
        "producer": "rollin",
        "params_hash": "test",
        "tokenizer": "tracefactory:tiny",
        "tokenizer_hash": recorded_hash or tokenizer_hash(tokenizer),
    }
    writer = ShardWriter(folder, "rollins", metadata)
    writer.write("part-0", rows)
    writer.finalize()
    return folder


def test_rows_are_printed_with_token_ids_decoded(tmp_path):
    text = show_table(_rollins(tmp_path / "rollins"), rows=5)
    assert text.splitlines()[0].endswith("2 rows, 2 match; showing 2")
    count = len(load_tokenizer("tracefactory:tiny").encode(TEXTS[0]))
    assert f"token_ids: ({count} tokens) {TEXTS[0]!r}" in text
    assert repr(TEXTS[0]) in text and repr(TEXTS[1]) in text
    assert "finish_reason: length" in text


def test_where_filters_rows_and_a_bad_condition_names_the_columns(tmp_path):
    table = _rollins(tmp_path / "rollins")
    text = show_table(table, rows=5, where="finish_reason = 'length'")
    assert "1 match where finish_reason = 'length'; showing 1" in text
    assert repr(TEXTS[1]) in text and repr(TEXTS[0]) not in text
    with pytest.raises(ConfigError, match="the columns are rollin_id, problem_id"):
        show_table(table, where="finish_reason ==== 1")


def test_a_tokenizer_that_is_not_the_recorded_one_is_refused(tmp_path):
    table = _rollins(tmp_path / "rollins", recorded_hash="0" * 64)
    with pytest.raises(ConfigError, match="tokenizer of hash 000000000000"):
        show_table(table)
