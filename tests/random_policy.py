"""A random (untrained) Qwen2 policy with the toy world's character tokenizer, saved offline.

Its samples are noise that ends on EOS now and then, as a real policy's do: enough to exercise
generation and search code paths in seconds without the shipped policy's behaviour.
"""

from pathlib import Path

import torch

from tracefactory.toyworld.tokenizer import build_tokenizer, save_tokenizer


def save_random_policy(folder: Path, hidden_size: int, seed: int = 0) -> Path:
    """Write a random Qwen2 policy folder loadable with the Auto* classes; returns ``folder``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer()
    save_tokenizer(tokenizer, folder)
    torch.manual_seed(seed)
    config = Qwen2Config(
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder
