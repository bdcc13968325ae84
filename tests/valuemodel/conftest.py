"""Tiny random backbones saved as Hugging Face folders, standing in for a policy checkpoint."""

import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=64,
)


@pytest.fixture(scope="session")
def qwen2_policy(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("qwen2_policy")
    Qwen2ForCausalLM(Qwen2Config(**TINY)).save_pretrained(path)
    (path / "tokenizer.json").write_text(json.dumps({"stand_in": "tokenizer"}))
    return path


@pytest.fixture(scope="session")
def llama_policy(tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("llama_policy")
    LlamaForCausalLM(LlamaConfig(**TINY)).save_pretrained(path)
    return path
