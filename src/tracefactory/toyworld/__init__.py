"""The embedded default's toy world: a synthetic task and a tiny policy shipped inside the package.

``POLICY_DIR`` and ``WEAK_POLICY_DIR`` are Hugging Face model folders: load them with
``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained`` like a Hub model id.
Prompts are ``TINY_TEMPLATE.format(problem=...)`` (``format_prompt``).
"""

from tracefactory.models import SHIPPED_MODELS
from tracefactory.toyworld.task import (
    TINY_TEMPLATE,
    SyntheticTaskConfig,
    format_prompt,
    generate_problems,
)

POLICY_DIR = SHIPPED_MODELS["tiny"]
WEAK_POLICY_DIR = SHIPPED_MODELS["tiny-weak"]

__all__ = [
    "POLICY_DIR",
    "TINY_TEMPLATE",
    "WEAK_POLICY_DIR",
    "SyntheticTaskConfig",
    "format_prompt",
    "generate_problems",
]
