"""Forward-pass FLOPs of a decoder, so methods are compared per unit of compute.

The estimate is Kaplan et al. (2020), table 1, for a forward pass: a token costs ``2 * P`` (one
multiply-add per non-embedding parameter) plus attention over its context, ``2 * n_layer * n_ctx *
d_attn`` (``QK^T`` and the weighted sum of ``V``, each a multiply-add per context position and
attention channel). A token at 0-based position ``t`` attends over ``t + 1`` positions. So encoding
positions ``start .. start + count - 1`` costs::

    count * 2 * P + 2 * n_layer * d_attn * sum(t + 1 for t in range(start, start + count))

What is counted: every token a model actually processes. For the policy, the search counts each
prompt once and each generated token once (as an engine with prefix caching, vLLM or SGLang, does:
a beam's prefix is not re-encoded for its next block); for the value model, the tokens the scorer
fed to it (the incremental scorer: new blocks only; the full scorer: whole sequences). Beside it,
the official code's count (``value_tokens_full``, ``value_flops_full``): its search re-encodes every
candidate whole, and scores each final beam whole once more before the vote; compare with the
paper's compute axis on that count.
Embedding lookups, the LM head / value head, norms and softmax are left out (small next to 2P at
the sizes that matter; for the tiny policy the LM head is a 31-wide projection).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    """What the FLOPs estimate needs of a model."""

    non_embedding_params: int  # P: parameters outside the token embedding (and a tied LM head)
    num_layers: int  # n_layer
    attention_width: int  # d_attn = heads * head_dim of the queries

    def forward_flops(self, start: int, count: int) -> float:
        """FLOPs to encode ``count`` tokens at positions ``start ..`` given cached earlier ones."""
        if count <= 0:
            return 0.0
        # sum of (t + 1) for t in [start, start + count): context lengths of the new tokens.
        context = count * start + count * (count + 1) // 2
        return 2.0 * self.non_embedding_params * count + 2.0 * (
            self.num_layers * self.attention_width * context
        )


def model_shape(model_or_path) -> ModelShape:
    """The ``ModelShape`` of a loaded transformers model, or of a model folder / Hub id.

    A folder is measured without loading weights: its config builds the model on the ``meta``
    device, where parameters have shapes but no storage.
    """
    import torch

    model = model_or_path
    if isinstance(model_or_path, str):
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(model_or_path)
        with torch.device("meta"):
            model = AutoModel.from_config(config)
    config = model.config
    embedding_params = sum(p.numel() for p in model.get_input_embeddings().parameters())
    total = sum(p.numel() for p in model.parameters())
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = getattr(config, "tie_word_embeddings", False)
    if output is not None and not tied:
        total -= sum(p.numel() for p in output.parameters())
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return ModelShape(total - embedding_params, config.num_hidden_layers, heads * head_dim)


@dataclass
class ComputeTally:
    """Compute a method spent (summed over the problems it ran on)."""

    gen_tokens: int = 0  # tokens the policy generated
    gen_flops: float = 0.0  # policy FLOPs: each prompt once, each generated token once
    value_tokens: int = 0  # tokens the value model processed (as the scorer ran)
    value_tokens_full: int = 0  # the official count: every scored sequence re-encoded whole,
    # and (search) every final beam scored again
    value_flops: float = 0.0  # value-model FLOPs of ``value_tokens``
    value_flops_full: float = 0.0  # value-model FLOPs of ``value_tokens_full``

    def reencode(self, shape: ModelShape, length: int) -> None:
        """Count one sequence of ``length`` tokens encoded whole, as the official code scores."""
        self.value_tokens_full += length
        self.value_flops_full += shape.forward_flops(0, length)

    def add(self, other: ComputeTally) -> None:
        self.gen_tokens += other.gen_tokens
        self.gen_flops += other.gen_flops
        self.value_tokens += other.value_tokens
        self.value_tokens_full += other.value_tokens_full
        self.value_flops += other.value_flops
        self.value_flops_full += other.value_flops_full

    def scaled(self, factor: float) -> dict[str, float]:
        """The tally times ``factor`` (e.g. per problem and per run), as plain numbers."""
        return {
            "gen_tokens": self.gen_tokens * factor,
            "gen_flops": self.gen_flops * factor,
            "value_tokens": self.value_tokens * factor,
            "value_tokens_full": self.value_tokens_full * factor,
            "value_flops": self.value_flops * factor,
            "value_flops_full": self.value_flops_full * factor,
            "flops": (self.gen_flops + self.value_flops) * factor,
            "flops_full": (self.gen_flops + self.value_flops_full) * factor,
        }
