"""The value model's card: ``README.md`` with Hub front matter, metrics, calibration, how to load.

A trained folder is a Hub artifact like the dataset: the card says what the model was trained from
(base model, dataset), how well it predicts on held-out problems (beside the constant baseline),
how calibrated it is (a figure and its table), and how to load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tracefactory.valuemodel.config import TrainConfig

_METRICS = (
    ("loss", "baseline_loss", "token cross-entropy over roll-out tokens"),
    ("brier", "baseline_brier", "Brier score of P(correct), all scored positions"),
    ("ece", "baseline_ece", "expected calibration error"),
    ("auroc", None, "AUROC of P(correct) vs the outcome"),
    ("pairwise_accuracy", None, "within-problem (correct, wrong) pairs ordered right"),
)


def _hub_id(name: str) -> str | None:
    """``name`` if it reads as a Hub id (``org/name``, not a local path), else None."""
    if name.count("/") == 1 and not Path(name).exists() and ":" not in name:
        return name
    return None


def front_matter(cfg: TrainConfig, license_id: str, val: dict[str, Any]) -> str:
    """YAML front matter in the Hub's fields: license, library, base model and dataset (when
    they are Hub ids), and the validation metrics as a ``model-index`` result."""
    meta: dict[str, Any] = {"license": license_id, "library_name": "transformers"}
    if base := _hub_id(cfg.init_from):
        meta["base_model"] = base
    if dataset := _hub_id(cfg.dataset):
        meta["datasets"] = [dataset]
    meta["tags"] = ["value-model", "value-guided-search", "math", "reasoning"]
    meta["pipeline_tag"] = "token-classification"
    metrics = [
        {"type": name, "value": round(float(val[name]), 4), "name": what}
        for name, _, what in _METRICS
        if val.get(name) is not None
    ]
    result = {
        "task": {"type": "token-classification", "name": "value estimation"},
        "dataset": {
            "name": cfg.dataset,
            "type": dataset or cfg.dataset,
            "config": cfg.dataset_config,
            "split": "validation (held-out problems)",
        },
        "metrics": metrics,
    }
    meta["model-index"] = [{"name": "value-model", "results": [result]}]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def render_model_card(
    cfg: TrainConfig, val: dict[str, Any], calibration: list[dict], figure: str | None
) -> str:
    """The card's Markdown: front matter, provenance, validation metrics, calibration, loading."""
    rows = "\n".join(
        f"| {name} | {val[name]:.4f} | {val[base]:.4f} | {what} |"
        if base
        else f"| {name} | {val[name]:.4f} | | {what} |"
        for name, base, what in _METRICS
    )
    last = [p for p in calibration if p["points"] == "last_token"]
    reliability = "\n".join(
        f"| {p['bin_center']:.2f} | {p['mean_prediction']:.3f} | {p['observed_rate']:.3f} "
        f"| {p['count']} |"
        for p in last
    )
    image = f"![calibration]({figure})\n\n" if figure else ""
    return f"""{front_matter(cfg, cfg.license, val)}
# Value model (value-guided search)

A token-level value model as in *Value-Guided Search for Efficient Chain-of-Thought Reasoning*
(arXiv 2505.17373): the backbone `{cfg.init_from}` with the head
`Linear(h, h) -> ReLU -> Linear(h, 3)` at every position. Classes: 0 finished and wrong,
1 finished and correct, 2 incomplete. The value of a partial trace is P(class 1) at its last token.

Trained on `{cfg.dataset}` (config `{cfg.dataset_config}`) with rows cut at {cfg.max_length:,}
tokens, batch {cfg.batch_size}, peak learning rate {cfg.max_lr:g}.

## Validation (held-out problems)

| metric | model | constant baseline | meaning |
|---|---|---|---|
{rows}

## Calibration (last token)

{image}| bin | mean prediction | observed success | points |
|---|---|---|---|
{reliability}

## How to load

```python
from tracefactory.valuemodel.model import ValueModel

model = ValueModel.from_pretrained("<this folder or Hub id>")
values = model.values([[...token ids of prompt + partial response...]])
```

Without tracefactory, plain transformers loads the same model, trained head included, from the
folder's own code (`modeling_value_model.py`); without `trust_remote_code=True` it refuses the
folder rather than attach a fresh head:

```python
from transformers import AutoModelForTokenClassification

model = AutoModelForTokenClassification.from_pretrained("<this folder>", trust_remote_code=True)
logits = model(input_ids=ids).logits  # (batch, tokens, 3); value = softmax(logits)[..., 1]
```

The weights use the official `Qwen2ForClassifier` names (`model.*`, `score.0`, `score.2`), so the
paper's code loads them too; `config.json` records the head under `value_head`.
"""


def draw_calibration(calibration: list[dict], path: Path) -> str | None:
    """A reliability diagram (PNG) of last-token values: its file name (None: no points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    last = [p for p in calibration if p["points"] == "last_token" and p["count"]]
    if not last:
        return None
    figure, axis = plt.subplots(figsize=(4, 4))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axis.plot([p["mean_prediction"] for p in last], [p["observed_rate"] for p in last], marker="o")
    axis.set(xlabel="predicted P(correct)", ylabel="observed success", xlim=(0, 1), ylim=(0, 1))
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)
    return path.name
