"""Markdown tables of polars frames, for the dataset card and its provenance file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl


def markdown_table(frame: pl.DataFrame, cell: Callable[[Any], str] = str) -> str:
    """A GitHub Markdown table: a header of the column names, then one line per row.

    ``pl.Config(tbl_formatting="MARKDOWN")`` pads cells and quotes strings, which would change
    every published card; this keeps the cards byte-identical to what they have always been.

    Args:
        frame: the rows, in order.
        cell: how one value is written (``str`` unless the caller formats numbers).
    """
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *body])
