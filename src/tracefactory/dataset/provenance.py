"""The provenance record the card links (``PROVENANCE.md``): what this dataset was built from.

The hashes are computed from the input tables while the dataset is built, the way DVC computes
them, so they equal what ``dvc.lock`` records for the same run. (Reading ``dvc.lock`` instead
cites the previous run: DVC writes it only after the stage has finished.)
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import polars as pl
import yaml

from tracefactory import __version__
from tracefactory.dataset.config import DatasetConfig
from tracefactory.errors import StageInputError
from tracefactory.io import TableReader, dvc_md5

if TYPE_CHECKING:
    from tracefactory.params import Params

logger = logging.getLogger(__name__)

PROVENANCE_FILE = "PROVENANCE.md"
# The sections of params that decide what the rows hold (the rest is where and how fast).
CITED_SECTIONS = {"seed", "problems", "rollin", "rollout", "verify", "label", "dataset"}


def input_hashes(config: DatasetConfig) -> dict[str, str]:
    """``{table folder: DVC md5}`` of every table the dataset was built from, computed now."""
    folders = dict.fromkeys(
        [config.problems_dir, *config.provenance_dirs, config.labels_dir, config.verdicts_dir]
    )
    return {folder: dvc_md5(folder) for folder in folders}


def _markdown_table(frame: pl.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *body])


def _table_metadata(folders: list[str]) -> pl.DataFrame:
    rows = []
    for folder in folders:
        try:
            meta = TableReader(folder).metadata
        except StageInputError as e:  # a table the card only cites: reported, not fatal
            logger.warning("provenance: %s", e)
            continue
        versions = json.loads(meta.get("package_versions", "{}"))
        listed = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        rows.append((f"`{folder}`", meta.get("params_hash", ""), meta.get("tokenizer", ""), listed))
    return pl.DataFrame(
        rows, schema=["table", "params_hash", "tokenizer", "packages"], orient="row"
    )


def render_provenance(hashes: dict[str, str], config: DatasetConfig, params: Params | None) -> str:
    """``PROVENANCE.md``: input hashes, table metadata, and the params that shaped the rows."""
    digests = pl.DataFrame(
        [(f"`{folder}`", f"`{digest}`") for folder, digest in hashes.items()],
        schema=["table", "md5 (as in dvc.lock)"],
        orient="row",
    )
    text = f"""# Provenance of {config.pretty_name}

Built by tracefactory {__version__}.

## Input tables

Content hashes of the tables this dataset was built from, computed while it was built, as DVC
computes them: `dvc.lock` records the same values for the run that produced them.

{_markdown_table(digests)}
"""
    metadata = _table_metadata(list(hashes))
    if metadata.height:
        text += f"\n## Table metadata\n\n{_markdown_table(metadata)}\n"
    if params is not None:
        cited = params.model_dump(mode="json", include=CITED_SECTIONS)
        text += f"\n## Params\n\n```yaml\n{yaml.safe_dump(cited, sort_keys=False)}```\n"
    return text
