import pyarrow as pa
import pytest

from tracefactory.errors import SchemaError
from tracefactory.schemas import load_schema, parse_type, schema_names


def _verdict_rows(**changes):
    row = {
        "trace_id": "t1",
        "trace_table": "rollouts",
        "problem_id": "p1",
        "label": 1,
        "reason": "match",
        "answer": "3",
        "grader_version": "g1",
    }
    row.update(changes)
    return row


def test_every_schema_file_loads_with_its_key_among_columns():
    names = schema_names()
    assert {"problems", "rollins", "rollouts", "verdicts", "labels", "dataset_openr1_vm"} <= set(
        names
    )
    for name in names:
        schema = load_schema(name)
        assert schema.key in [c.name for c in schema.columns]
        assert "params_hash" in schema.metadata_keys


def test_token_ids_are_list_of_int32():
    assert load_schema("rollins").column("token_ids").type == pa.list_(pa.int32())
    assert parse_type("list<list<int32>>") == pa.list_(pa.list_(pa.int32()))


def test_validate_normalises_representation():
    schema = load_schema("verdicts")
    table = pa.Table.from_pylist([_verdict_rows()])  # int64 label, large types from inference
    assert table.schema.field("label").type == pa.int64()
    validated = schema.validate(table)
    assert validated.schema.field("label").type == pa.int8()


def test_missing_column_is_named():
    table = pa.Table.from_pylist([_verdict_rows()]).drop_columns(["reason"])
    with pytest.raises(SchemaError, match=r"table 'verdicts': missing column\(s\) \['reason'\]"):
        load_schema("verdicts").validate(table)


def test_wrong_type_names_the_column():
    table = pa.Table.from_pylist([_verdict_rows(label=1.0)])
    with pytest.raises(SchemaError, match=r"column 'label': type double"):
        load_schema("verdicts").validate(table)


def test_unknown_label_value_names_column_and_value():
    table = pa.Table.from_pylist([_verdict_rows(label=7)])
    with pytest.raises(SchemaError, match=r"column 'label': value 7 is not one of"):
        load_schema("verdicts").validate(table)


def test_a_label_below_the_allowed_range_is_rejected():
    table = pa.Table.from_pylist([_verdict_rows(label=-1)])
    with pytest.raises(SchemaError, match=r"column 'label': value -1 is not one of"):
        load_schema("verdicts").validate(table)


def test_unknown_value_inside_a_list_column_is_rejected():
    schema = load_schema("dataset_openr1_vm")
    row = {
        "problem_id": "p",
        "split": "train",
        "roll_in_ids": [[1, 2]],
        "roll_outs_ids": [[3]],
        "labels": [1, 3],
    }
    with pytest.raises(SchemaError, match=r"column 'labels': value 3"):
        schema.validate(pa.Table.from_pylist([row]))


def test_null_in_non_nullable_column_is_rejected_but_allowed_where_nullable():
    schema = load_schema("verdicts")
    schema.validate(pa.Table.from_pylist([_verdict_rows(answer=None)]))
    with pytest.raises(SchemaError, match=r"column 'problem_id': null at row 0"):
        schema.validate(pa.Table.from_pylist([_verdict_rows(problem_id=None)]))


def test_overflowing_integer_is_rejected():
    table = pa.Table.from_pylist([_verdict_rows(label=300)])
    with pytest.raises(SchemaError, match=r"column 'label'"):
        load_schema("verdicts").validate(table)


def test_unknown_schema_lists_the_known_ones():
    with pytest.raises(SchemaError, match="known: .*problems"):
        load_schema("nope")
