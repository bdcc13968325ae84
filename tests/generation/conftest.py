"""Fixtures: a random tiny Qwen2 policy with the toy world's character tokenizer (built offline),
and a small problems table."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tracefactory.config import PolicyConfig
from tracefactory.io import ShardWriter
from tracefactory.toyworld.tokenizer import build_tokenizer, save_tokenizer


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random (untrained) Qwen2 policy folder loadable with Auto* classes, offline."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny-policy")
    tokenizer = build_tokenizer()
    save_tokenizer(tokenizer, folder)
    torch.manual_seed(0)
    config = Qwen2Config(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    # Random weights: samples are noise but end on EOS now and then, as a real policy's do.
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_policy(tiny_model_dir: Path) -> PolicyConfig:
    return PolicyConfig(name="tiny", model=str(tiny_model_dir), template="tiny", batch_size=8)


def write_problems(directory: Path, count: int) -> Path:
    """A finished problems table of ``count`` synthetic train problems (plus two val ones)."""
    rows = [
        {
            "problem_id": f"p{i:04d}",
            "source": "test",
            "problem": f"{i % 7}+{(i * 3) % 5}*{(i + 2) % 4}=? (mod 7)",
            "answer": "0",
            "split": "train",
        }
        for i in range(count)
    ] + [
        {"problem_id": "v0", "source": "test", "problem": "1+1", "answer": "2", "split": "val"},
        {"problem_id": "v1", "source": "test", "problem": "2+2", "answer": "4", "split": "val"},
    ]
    writer = ShardWriter(directory, "problems", {"producer": "test", "params_hash": "x"})
    writer.write("shard-00000", rows)
    writer.finalize()
    return directory


@pytest.fixture
def make_problems():
    """``write_problems`` as a fixture (test modules cannot import conftest)."""
    return write_problems


@pytest.fixture
def problems_dir(tmp_path: Path) -> Path:
    return write_problems(tmp_path / "problems", 6)
