"""Fixtures: a random tiny Qwen2 policy with the toy world's character tokenizer, a value model
built from it, and a problems table with a test split (all offline, built in seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tracefactory.io import ShardWriter
from tracefactory.toyworld.tokenizer import build_tokenizer, save_tokenizer


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Qwen2 policy: its samples are noise that ends on EOS now and then."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("search-policy")
    tokenizer = build_tokenizer()
    save_tokenizer(tokenizer, folder)
    torch.manual_seed(0)
    config = Qwen2Config(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def value_model_dir(policy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tracefactory.valuemodel import ValueModel

    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("search-value-model")
    ValueModel.from_policy(policy_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def problems_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished problems table with six test problems (and one train problem)."""
    directory = tmp_path_factory.mktemp("search-problems") / "problems"
    rows = [
        {"problem_id": f"t{i}", "source": "synthetic", "problem": f"{i}+{i}=? (mod 7)",
         "answer": str((2 * i) % 7), "split": "test"}
        for i in range(6)
    ] + [{"problem_id": "x", "source": "synthetic", "problem": "1+1", "answer": "2",
          "split": "train"}]  # fmt: skip
    writer = ShardWriter(directory, "problems", {"producer": "test", "params_hash": "x"})
    writer.write("shard-00000", rows)
    writer.finalize()
    return directory
