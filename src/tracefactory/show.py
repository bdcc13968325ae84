"""``tracefactory show TABLE``: a table's rows as a person reads them, token ids decoded.

Every column is printed; a token-id column (a list of integers whose name ends in ``_ids``) is
decoded with the tokenizer the table records in its metadata, after checking that tokenizer's
vocabulary hash against the one recorded (ids decoded with another vocabulary would read as
plausible nonsense). Any other list is summarised by its length and first items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from tracefactory.errors import ConfigError, StageInputError
from tracefactory.io import TableReader
from tracefactory.models import load_tokenizer, require_same_tokenizer, tokenizer_hash

LIST_ITEMS_SHOWN = 8  # of a list that is not token ids


def show_table(directory: str | Path, rows: int = 5, where: str | None = None) -> str:
    """The first ``rows`` rows of the table in ``directory`` matching the SQL ``where``, decoded.

    Raises:
        StageInputError: the folder holds no finished table.
        ConfigError: ``where`` is not a valid filter on the table's columns, or the recorded
            tokenizer is not the one the table was written with.
    """
    reader = TableReader(directory)
    frame = reader.scan()
    if where:
        frame = frame.filter(_condition(where, frame.collect_schema().names()))
    try:
        matched = frame.select(pl.len()).collect().item()
        shown = frame.head(rows).collect()
    except pl.exceptions.PolarsError as e:
        raise ConfigError(f"--where {where!r}: {_first_line(e)}") from None
    token_columns = [c for c, t in shown.schema.items() if c.endswith("_ids") and _is_int_list(t)]
    decode = _decoder(reader.metadata, directory) if token_columns and len(shown) else None
    scope = f" where {where}" if where else ""
    lines = [f"{directory}: {reader.num_rows} rows, {matched} match{scope}; showing {len(shown)}"]
    for index, row in enumerate(shown.iter_rows(named=True), start=1):
        lines.append(f"--- row {index}")
        for column, value in row.items():
            text = decode(value) if column in token_columns and decode else _plain(value)
            lines.append(f"{column}: {text}")
    return "\n".join(lines)


def _condition(where: str, columns: list[str]) -> pl.Expr:
    try:
        return pl.sql_expr(where)
    except (pl.exceptions.PolarsError, ValueError) as e:
        raise ConfigError(
            f"--where {where!r} is not an SQL condition ({_first_line(e)}); e.g. "
            f'--where "label = 1"; the columns are {", ".join(columns)}'
        ) from None


def _decoder(metadata: dict[str, str], directory: str | Path):
    """A function decoding one token-id list (or a list of them) with the table's tokenizer."""
    model, recorded = metadata.get("tokenizer"), metadata.get("tokenizer_hash")
    if not model or not recorded:
        raise StageInputError(f"{directory} records no tokenizer: its token ids cannot be decoded")
    tokenizer = load_tokenizer(model)
    require_same_tokenizer(f"table {directory}", recorded, model, tokenizer_hash(tokenizer))

    def decode(ids: Any) -> str:
        if ids and isinstance(ids[0], list):  # one list per roll-out (the openr1_vm layout)
            return "".join(f"\n  [{i}] {decode(item)}" for i, item in enumerate(ids))
        return f"({len(ids)} tokens) {tokenizer.decode(ids)!r}"

    return decode


def _plain(value: Any) -> str:
    if isinstance(value, list) and len(value) > LIST_ITEMS_SHOWN:
        head = ", ".join(str(v) for v in value[:LIST_ITEMS_SHOWN])
        return f"[{head}, ...] ({len(value)} items)"
    return str(value)


def _is_int_list(dtype: pl.DataType) -> bool:
    while isinstance(dtype, pl.List):
        dtype = dtype.inner
    return dtype.is_integer()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
