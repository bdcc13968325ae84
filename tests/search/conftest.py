"""Fixtures: a random tiny Qwen2 policy with the toy world's character tokenizer, a value model
built from it, and a problems table with a test split (all offline, built in seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from random_policy import save_random_policy

from tracefactory.io import ShardWriter


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Qwen2 policy (tests/random_policy.py)."""
    return save_random_policy(tmp_path_factory.mktemp("search-policy"), hidden_size=32)


@pytest.fixture(scope="session")
def value_model_dir(policy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tracefactory.valuemodel.model import ValueModel

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
