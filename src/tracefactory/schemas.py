"""The data contracts: load ``schemas/<table>.yaml`` and validate tables against them.

Each table written by a stage has one schema file, the contract between that stage and everything
downstream. ``validate`` is called on every write (by ``tracefactory.io``), so a stage that drifts
from its contract fails at the write that drifted, naming the table, the column and the offending
value, instead of three stages later.

pyarrow is imported where a table is touched, not at module import: grader worker processes load
the trajectory classes from here and must stay small (their memory is capped).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from tracefactory.errors import SchemaError

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA_DIR = Path(__file__).parent / "_schemas"


class TrajectoryClass(IntEnum):
    """A trace's class: the ``label`` of the verdicts and labels tables, the value model's three
    outputs (arXiv 2505.17373, section 3). The value of a prefix is P(CORRECT)."""

    WRONG = 0  # finished, answer wrong (or unusable: no boxed answer, unparseable, timeout)
    CORRECT = 1  # finished, answer equivalent to the gold answer
    INCOMPLETE = 2  # not finished: length cap or thinking never closed


CLASS_NAMES = tuple(c.name.lower() for c in TrajectoryClass)  # index = the class


class FinishReason(StrEnum):
    """Why a sample ended (the ``finish_reason`` column of rollins and rollouts)."""

    STOP = "stop"  # a stop token (the tokenizer's EOS or a configured stop id) was generated
    LENGTH = "length"  # the request's max_new_tokens was reached
    # Nothing generated: the prompt leaves no room in the engine's context (max_model_len). The
    # sample is kept as a failed row (no tokens) so one long prompt cannot fail its whole batch.
    PROMPT_TOO_LONG = "prompt_too_long"


_SCALAR_TYPES = {  # schema-file name -> pyarrow type factory
    "string": "string",
    "bool": "bool_",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "float32": "float32",
    "float64": "float64",
}
_LIST_TYPE = re.compile(r"^list<(.+)>$")


def parse_type(spec: str) -> pa.DataType:
    """Turn a schema file's type string (``int32``, ``list<list<int32>>``) into an Arrow type."""
    import pyarrow as pa

    spec = spec.strip()
    if spec in _SCALAR_TYPES:
        return getattr(pa, _SCALAR_TYPES[spec])()
    match = _LIST_TYPE.match(spec)
    if match:
        return pa.list_(parse_type(match.group(1)))
    raise SchemaError(f"unknown column type {spec!r}; allowed: {sorted(_SCALAR_TYPES)} or list<T>")


@dataclass(frozen=True)
class Column:
    """One column of a table contract."""

    name: str
    type: pa.DataType
    doc: str
    nullable: bool = False
    allowed: tuple | None = None  # closed set of values (of the elements, for list columns)


@dataclass(frozen=True)
class TableSchema:
    """A table contract: its columns, its key and the metadata every shard must carry."""

    name: str
    version: int
    description: str
    key: str
    columns: tuple[Column, ...]
    metadata_keys: tuple[str, ...]

    @property
    def arrow(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def validate(self, table: pa.Table) -> pa.Table:
        """Check ``table`` against the contract and return it with the contract's exact Arrow types.

        Representation differences are normalised (``large_string`` to ``string``, ``int64``
        to ``int32`` when every value fits); a different kind of type, a missing or unknown
        column, a null in a non-nullable column or a value outside ``allowed`` raises
        ``SchemaError``.
        """
        import pyarrow as pa

        names = set(table.column_names)
        missing = [c.name for c in self.columns if c.name not in names]
        if missing:
            raise SchemaError(f"table {self.name!r}: missing column(s) {missing}")
        unknown = sorted(names - {c.name for c in self.columns})
        if unknown:
            raise SchemaError(
                f"table {self.name!r}: unknown column(s) {unknown} (not in the schema)"
            )
        arrays = [self._validate_column(c, table.column(c.name)) for c in self.columns]
        return pa.Table.from_arrays(arrays, schema=self.arrow)

    def _validate_column(self, column: Column, values: pa.ChunkedArray) -> pa.ChunkedArray:
        import pyarrow as pa
        import pyarrow.compute as pc

        where = f"table {self.name!r}, column {column.name!r}"
        if not _same_kind(values.type, column.type):
            raise SchemaError(f"{where}: type {values.type} where the schema says {column.type}")
        try:
            values = values.cast(column.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise SchemaError(f"{where}: values do not fit {column.type}: {e}") from e
        if not column.nullable and values.null_count:
            row = pc.index(pc.is_null(values), True).as_py()
            raise SchemaError(f"{where}: null at row {row}, and the column is not nullable")
        if column.allowed is not None:
            _check_allowed(where, values, column.allowed)
        return values


def _same_kind(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Whether ``actual`` is ``expected`` up to representation (string, list or int width).

    An all-null column (Arrow type ``null``) fits any type; the null check then decides.
    """
    import pyarrow as pa

    if pa.types.is_null(actual):
        return True
    if pa.types.is_list(expected):
        is_list = pa.types.is_list(actual) or pa.types.is_large_list(actual)
        return is_list and _same_kind(actual.value_type, expected.value_type)
    if pa.types.is_string(expected):
        return (
            pa.types.is_string(actual)
            or pa.types.is_large_string(actual)
            or (pa.types.is_string_view(actual))
        )
    if pa.types.is_integer(expected):
        return pa.types.is_integer(actual)
    if pa.types.is_floating(expected):
        return pa.types.is_floating(actual)
    return actual == expected


def _check_allowed(where: str, values: pa.ChunkedArray, allowed: tuple) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    flat = values
    while pa.types.is_list(flat.type):
        flat = pc.list_flatten(flat)
    if _within_integer_range(flat, allowed):
        return
    allowed_array = pa.array(allowed, type=flat.type)
    bad = pc.invert(pc.is_in(flat, value_set=allowed_array))
    bad = pc.and_kleene(bad, pc.is_valid(flat))
    if pc.any(bad).as_py():
        value = pc.filter(flat, bad)[0].as_py()
        raise SchemaError(f"{where}: value {value!r} is not one of the allowed {list(allowed)}")


def _within_integer_range(flat: pa.ChunkedArray, allowed: tuple) -> bool:
    """Whether every value lies in ``allowed`` when that is a run of consecutive integers (a
    class label): a min and max over the column instead of a hash lookup per value, which a
    labels shard's millions of per-token targets make the costliest check of its write."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_integer(flat.type) or not all(isinstance(v, int) for v in allowed):
        return False
    low, high = min(allowed), max(allowed)
    if set(allowed) != set(range(low, high + 1)):
        return False
    bounds = pc.min_max(flat).as_py()  # nulls skipped, as in the exact check
    return bounds["min"] is None or (low <= bounds["min"] and bounds["max"] <= high)


@functools.cache
def load_schema(name: str) -> TableSchema:
    """Load the contract ``schemas/<name>.yaml``.

    Raises:
        SchemaError: if there is no such schema or the file is malformed.
    """
    path = SCHEMA_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SCHEMA_DIR.glob("*.yaml"))
        raise SchemaError(f"no schema named {name!r} in {SCHEMA_DIR}; known: {known}")
    spec = yaml.safe_load(path.read_text())
    try:
        columns = tuple(
            Column(
                name=c["name"],
                type=parse_type(c["type"]),
                doc=c["doc"],
                nullable=bool(c.get("nullable", False)),
                allowed=tuple(c["allowed"]) if "allowed" in c else None,
            )
            for c in spec["columns"]
        )
        return TableSchema(
            name=spec["name"],
            version=int(spec["version"]),
            description=" ".join(spec["description"].split()),
            key=spec["key"],
            columns=columns,
            metadata_keys=tuple(spec["metadata"]),
        )
    except (KeyError, TypeError) as e:
        raise SchemaError(f"malformed schema file {path}: {e!r}") from e


def schema_names() -> list[str]:
    """Names of every table contract in ``schemas/``."""
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.yaml"))
