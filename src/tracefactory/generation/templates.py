"""Prompt templates per policy family (a policy's ``template`` names one).

The R1 template is the one the paper used for DeepSeek-R1-Distill (arXiv 2505.17373, sec. 3);
its special tokens are written out, so prompts are encoded with ``add_special_tokens=False``. The
tiny policy's template is the toy world's (``{problem}\\n<think>\\n``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracefactory.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

R1_TEMPLATE = (
    "<｜begin▁of▁sentence｜><｜User｜>{problem} Please think step-by-step and put your final "
    "answer within \\boxed{{}}.<｜Assistant｜><think>\n"
)
TINY_TEMPLATE = "{problem}\n<think>\n"  # tracefactory.toyworld.TINY_TEMPLATE
TEMPLATES = {"r1": R1_TEMPLATE, "tiny": TINY_TEMPLATE}


def format_prompt(template: str, problem: str) -> str:
    """The prompt text of ``problem`` under the template named ``template``."""
    if template not in TEMPLATES:
        raise ConfigError(f"unknown prompt template {template!r}; known: {sorted(TEMPLATES)}")
    return TEMPLATES[template].format(problem=problem)


def encode_prompt(tokenizer: PreTrainedTokenizerBase, template: str, problem: str) -> list[int]:
    """Prompt token ids; the template carries its own special tokens, the tokenizer adds none."""
    return tokenizer.encode(format_prompt(template, problem), add_special_tokens=False)
