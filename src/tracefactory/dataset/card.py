"""The dataset card: Hub front matter, how the data was made, provenance, label statistics.

Every number in the card comes from the tables of this run (``DatasetStats``), the params that
produced them, or the input tables' hashes computed during the build; nothing is typed in by
hand, so a changed run gives a changed card.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import yaml

from tracefactory.dataset.config import DatasetConfig
from tracefactory.dataset.figures import FIGURE_FILES
from tracefactory.dataset.markdown import markdown_table
from tracefactory.dataset.notes import CITATION, decoding_section, limitations_section
from tracefactory.dataset.provenance import PROVENANCE_FILE, generation_engines
from tracefactory.dataset.stats import DatasetStats
from tracefactory.schemas import CLASS_NAMES, load_schema

if TYPE_CHECKING:
    from tracefactory.params import Params

logger = logging.getLogger(__name__)

SPLIT_LABELS = {"train": "train", "val": "validation"}  # value-model split -> Hub split name
# config -> its schema
CONFIG_SCHEMAS = {"default": "labels", "openr1_vm": "dataset_openr1_vm", "text": "dataset_text"}

_SIZE_CATEGORIES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]


_CONFIGS_TABLE = "\n".join(
    [
        "| config | rows | layout |",
        "|---|---|---|",
        "| `default` | one per roll-out | `schemas/labels.yaml`: `input_ids` = prompt + roll-in "
        "prefix + roll-out; labels from `supervised_start` on |",
        "| `openr1_vm` | one per problem | `roll_in_ids` (prompt + prefix), `roll_outs_ids`, "
        "`labels`: three aligned lists |",
        "| `text` | one per roll-out | `default`'s rows decoded, for reading: `problem`, "
        "`gold_answer`, `roll_in`, `roll_out`, `label`, `branch_value` |",
    ]
)
_BALANCE_COLUMNS = ["label", "class", "rollouts", "share", "tokens", "token_share"]


def size_category(rows: int) -> str:
    """The Hub's size category for a dataset of ``rows`` rows."""
    for limit, name in _SIZE_CATEGORIES:
        if rows < limit:
            return name
    return "n>1B"


def hub_features(schema_name: str) -> list[dict]:
    """The config's columns as Hub features: the class columns (a closed set of class ids) as
    ``ClassLabel`` named wrong/correct/incomplete, so the viewer shows names, not 0/1/2."""
    import datasets

    schema = load_schema(schema_name)
    features = datasets.Features.from_arrow_schema(schema.arrow)
    label = datasets.ClassLabel(names=list(CLASS_NAMES))
    for column in schema.columns:
        if column.allowed is None or set(column.allowed) != set(range(len(CLASS_NAMES))):
            continue
        is_list = pa.types.is_list(column.type)
        features[column.name] = datasets.List(label) if is_list else label
    return features._to_yaml_list()


def front_matter(files: dict[str, dict[str, list[str]]], rows: int, config: DatasetConfig) -> str:
    """YAML front matter: license, categories, size, and one Hub config per exported layout."""
    configs, infos = [], []
    for name, splits in files.items():
        if not splits:
            continue  # an empty layout has no files for `datasets` to load
        entry: dict = {"config_name": name}
        if name == "default":
            entry["default"] = True
        entry["data_files"] = [
            {"split": split, "path": f"{name}/{split}-*.parquet"} for split in sorted(splits)
        ]
        configs.append(entry)
        infos.append({"config_name": name, "features": hub_features(CONFIG_SCHEMAS[name])})
    meta = {
        "license": config.license,
        "pretty_name": config.pretty_name,
        "task_categories": list(config.task_categories),
        "tags": list(config.tags),
        "size_categories": [size_category(rows)],
        "configs": configs,
        "dataset_info": infos,
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _table(frame: pl.DataFrame, floats: str = "{:.3f}") -> str:
    """A Markdown table of ``frame`` (floats formatted, integers with thousands separators)."""

    def cell(value) -> str:
        if isinstance(value, float):
            return floats.format(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    return markdown_table(frame, cell)


def _type_name(arrow_type: pa.DataType) -> str:
    """The schema file's spelling of an Arrow type (``list<int32>``, ``float32``)."""
    if pa.types.is_list(arrow_type):
        return f"list<{_type_name(arrow_type.value_type)}>"
    return {"float": "float32", "double": "float64"}.get(str(arrow_type), str(arrow_type))


def _figure(figures: dict[str, str], name: str) -> str:
    return f"![{FIGURE_FILES[name]}]({figures[name]})"


def _overview(stats: DatasetStats, config: DatasetConfig) -> str:
    graded = stats.graded()
    return f"""# {config.pretty_name}

Value-model training data in the style of OpenR1-VM (arXiv 2505.17373, "Value-Guided Search for
Efficient Chain-of-Thought Reasoning"), built end to end by `tracefactory`. Each row is one
**roll-out**: a fixed roll-out policy continued a prefix (a *branch point*) of a **roll-in** sampled
from a pool of policies, and a math-verify grader gave the finished trajectory a class:
**0 wrong, 1 correct, 2 incomplete** (length cap, no answer). Every roll-out token carries its
trajectory's class as its value target (a per-token Monte Carlo sample of the roll-out policy's
success probability); prompt and roll-in tokens are context only.

- {stats.num_rows:,} roll-outs from {stats.num_problems:,} problems
- {stats.supervised_tokens:,} labelled (roll-out) tokens; {stats.context_tokens:,} context tokens
- graded: {graded["graded_rollouts"]:,} roll-outs of {graded["graded_problems"]:,} problems;
  dropped problems: {graded["dropped_problems"]:,} (no correct roll-out, or held out)
- grader version(s): {", ".join(stats.grader_versions()) or "none"}

## Loading

```python
from datasets import load_dataset

rows = load_dataset("<this repo or folder>")                    # config "default"
per_problem = load_dataset("<this repo or folder>", "openr1_vm")  # the paper trainer's layout
```

{_CONFIGS_TABLE}

Splits are by problem (a problem's roll-outs are all in one split): `validation` is a
deterministic share of problem ids (hash), carved from the problems' train split.

{_table(stats.splits().with_columns(pl.col("split").replace(SPLIT_LABELS)))}
"""


def _columns() -> str:
    lines = []
    for config, schema_name in CONFIG_SCHEMAS.items():
        schema = load_schema(schema_name)
        rows = pl.DataFrame(
            {
                "column": [f"`{c.name}`" for c in schema.columns],
                "type": [_type_name(c.type) for c in schema.columns],
                "meaning": [c.doc for c in schema.columns],
            }
        )
        lines.append(f"**`{config}`**\n\n{_table(rows)}")
    return "## Columns\n\n" + "\n\n".join(lines) + "\n"


def _how_made(stats: DatasetStats, figures: dict[str, str], params: Params | None) -> str:
    observed = stats.success_by("rollin_policy").rename({"rollin_policy": "roll-in policy"})
    rollout_policies = ", ".join(f"`{p}`" for p in sorted(stats.rows["rollout_policy"].unique()))
    text = f"""## How it was made

Roll-in policies seen in the data:

{_table(observed)}

Roll-out policy: {rollout_policies or "none"}.
"""
    if params is not None:
        pool = pl.DataFrame(
            [(p.name, p.model, p.weight, p.template) for p in params.rollin.policies],
            schema=["name", "model", "weight", "template"],
            orient="row",
        )
        rollin, rollout = params.rollin, params.rollout
        text += f"""
Configured policy pool (`rollin.policies`):

{_table(pool, floats="{:g}")}

- roll-ins: {rollin.samples_per_problem} per problem, sampling
  `{json.dumps(rollin.sampling.model_dump())}`
- branch points: {rollout.cuts_per_rollin} per roll-in, cut distribution
  `{rollout.cut_distribution}`;
  {rollout.samples_per_cut} roll-out(s) per branch point by `{rollout.policy.model}`, sampling
  `{json.dumps(rollout.sampling.model_dump())}`
- labels: val fraction {params.label.val_fraction}, problems-table splits
  {list(params.label.problem_splits)}, all-failed problems dropped: {params.label.drop_all_failed}
"""
    text += f"""
Verdict reasons of the graded roll-outs:

{_table(stats.verdict_reasons())}

{_figure(figures, "branch_points")}
"""
    return text


def _label_stats(stats: DatasetStats, figures: dict[str, str]) -> str:
    values = stats.problem_values()
    spread = values.select(
        pl.col("mc_value").mean().alias("mean MC value"),
        pl.col("mc_value").std(ddof=0).fill_null(0.0).alias("std across problems"),
        pl.col("branch_value_std").mean().alias("mean within-problem branch std"),
        (pl.col("mc_value") == 1.0).sum().alias("problems always solved"),
    )
    return f"""## Label statistics

### Class balance

{_table(stats.class_balance().select(_BALANCE_COLUMNS))}

{_figure(figures, "class_balance")}

### Success rate by problem source and by roll-in policy

{_table(stats.success_by("source"))}

{_table(stats.success_by("rollin_policy"))}

{_figure(figures, "success_by_group")}

### Lengths (tokens)

{_table(stats.length_quantiles(), floats="{:,.0f}")}

{_figure(figures, "lengths")}

### Success probability vs. relative cut position

A branch point late in a roll-in leaves the roll-out policy less to do; the closer to the end, the
more the roll-in's own outcome shows through.

{_table(stats.success_by_cut().select("from", "to", "rollouts", "success_rate"), floats="{:.2f}")}

{_figure(figures, "success_vs_cut")}

### Per-problem Monte Carlo value

{_branch_value_note(stats)}

{_table(spread)}

{_figure(figures, "mc_value_spread")}
"""


def _branch_value_note(stats: DatasetStats) -> str:
    """What ``branch_value`` is worth in this dataset: with one roll-out per branch point it is
    the roll-out's own outcome, not a lower-variance target."""
    most = stats.rollouts_per_branch_point
    if most <= 1:
        return (
            "`branch_value` is the mean success of the roll-outs sharing a branch point; here "
            "every branch point has one roll-out (`branch_count` is 1 on every row, "
            "`rollout.samples_per_cut: 1`), so it equals the roll-out's own outcome (label 1 or "
            "not) and is no lower-variance target. Set `rollout.samples_per_cut` above 1 for a "
            "Monte Carlo estimate."
        )
    return (
        "`branch_value` is the mean success of the roll-outs sharing a branch point "
        f"(`branch_count` of them, up to {most} here): a lower-variance target than the per-token "
        "trajectory class."
    )


def _provenance(hashes: dict[str, str]) -> str:
    tables = ", ".join(f"`{folder}`" for folder in hashes)
    engines = "".join(f"\n- {line}" for line in generation_engines(list(hashes)))
    generated = f"\n\nThe tokens were generated by:\n{engines}" if engines else ""
    return f"""## Provenance

Built from the tables {tables}. [{PROVENANCE_FILE}]({PROVENANCE_FILE}) records their content
hashes (computed during this build, the values `dvc.lock` records for the same run), each
table's params hash, tokenizer, package versions and generation engines, and the params that
shaped the rows.{generated}
"""


def render_card(
    stats: DatasetStats,
    files: dict[str, dict[str, list[str]]],
    figures: dict[str, str],
    config: DatasetConfig,
    hashes: dict[str, str],
    tokenizer: str,
    params: Params | None = None,
    example: str | None = None,
) -> str:
    """The whole card (``README.md``): front matter, then the sections in reading order."""
    sections = [
        front_matter(files, stats.num_rows, config),
        _overview(stats, config),
        _columns(),
        decoding_section(tokenizer, example),
        _how_made(stats, figures, params),
        _label_stats(stats, figures),
        limitations_section(stats),
        _provenance(hashes),
        CITATION,
        f"## License\n\n`{config.license}` (from params `dataset.license`).\n",
    ]
    return "\n".join(sections)
