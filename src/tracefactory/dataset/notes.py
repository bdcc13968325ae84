"""The card's prose sections that hold no table: reading the token ids, limitations, citation."""

from __future__ import annotations

from tracefactory.dataset.stats import DatasetStats

CITATION = """## Citation

The method and the OpenR1-VM layout this dataset follows:

```bibtex
@misc{vgs2025,
  title         = {Value-Guided Search for Efficient Chain-of-Thought Reasoning},
  author        = {Wang, Kaiwen and others},
  year          = {2025},
  eprint        = {2505.17373},
  archivePrefix = {arXiv},
  primaryClass  = {cs.LG}
}
```
"""

_SHIPPED_PREFIX = "tracefactory:"


def _load_line(tokenizer: str) -> str:
    if tokenizer.startswith(_SHIPPED_PREFIX):  # ships inside the package, not on the Hub
        return (
            "from tracefactory.models import load_tokenizer  # pip install tracefactory\n"
            f'tokenizer = load_tokenizer("{tokenizer}")'
        )
    return (
        "from transformers import AutoTokenizer\n"
        f'tokenizer = AutoTokenizer.from_pretrained("{tokenizer}")'
    )


def decoding_section(tokenizer: str, example: str | None) -> str:
    """How to turn the stored token ids back into text, and one decoded row when available.

    The rows hold token ids exactly as generated (re-tokenizing text would not give them back),
    so the text a reader wants (problem, reasoning, answer) is one ``decode`` away.
    """
    text = f"""## Reading the text

Rows store token ids exactly as generated, never re-tokenized text. Decode them with the
generating tokenizer (`{tokenizer}`):

```python
from datasets import load_dataset
{_load_line(tokenizer)}

row = load_dataset("<this repo or folder>", split="train")[0]
start = row["supervised_start"]
print(tokenizer.decode(row["input_ids"][:start]))  # prompt (the problem) + roll-in prefix
print(tokenizer.decode(row["input_ids"][start:]))  # the roll-out, ending in its boxed answer
print(row["label"])  # its class: 0 wrong, 1 correct, 2 incomplete
```
"""
    if example:
        text += f"\nOne validation row, decoded:\n\n{example}\n"
    return text


def limitations_section(stats: DatasetStats) -> str:
    """What the labels are and are not; numbers from this dataset where they matter."""
    sources = ", ".join(f"`{s}`" for s in sorted(stats.rows["source"].unique().to_list()))
    policies = ", ".join(f"`{p}`" for p in sorted(stats.rows["rollout_policy"].unique().to_list()))
    if stats.rollouts_per_branch_point > 1:
        siblings = "`branch_value` averages the siblings of a branch point and is less noisy."
    else:
        siblings = (
            "`branch_value` is no better here: with one roll-out per branch point it equals the "
            "outcome."
        )
    return f"""## Limitations

- **Labels are single Monte Carlo samples.** A token's target is the outcome of one roll-out
  from its branch point, an unbiased but noisy estimate of the roll-out policy's success
  probability; {siblings}
- **Values belong to the roll-out policy** ({policies or "none"}): a value model trained on
  these rows estimates that policy's chance of finishing correctly, not any other model's.
- **Grading is automatic.** A math-verify based grader compares the last boxed answer after the
  thinking section with the gold answer; equivalent answers it cannot parse count as wrong, and
  a response with no boxed answer or cut at the length cap is class 2 (incomplete).
- **Problems come from** {sources or "no source"}; the value model will be calibrated on this
  mix of problems and difficulty, not on others.
- **Dropped problems.** Problems none of whose roll-outs succeeded are dropped when
  `label.drop_all_failed` is set (the paper), which removes the hardest problems.
"""
