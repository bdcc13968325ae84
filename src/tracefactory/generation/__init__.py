"""Generation: one engine interface (transformers or vLLM), and the rollin and rollout stages.

Light on import: torch, transformers and vllm load only when a backend is built, so the CLI and
the driver of a Ray run stay quick to start.
"""

from tracefactory.generation.engine import (
    GenerationBackend,
    GenerationRequest,
    GenerationResult,
    Sample,
    SamplingSpec,
    load_backend,
)

__all__ = [
    "GenerationBackend",
    "GenerationRequest",
    "GenerationResult",
    "Sample",
    "SamplingSpec",
    "load_backend",
]
