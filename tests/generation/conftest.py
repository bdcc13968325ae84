"""Fixtures: a random tiny Qwen2 policy with the toy world's character tokenizer (built offline),
and a small problems table."""

from __future__ import annotations

from pathlib import Path

import pytest
from random_policy import save_random_policy

from tracefactory.generation.config import PolicyConfig
from tracefactory.io import ShardWriter


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Qwen2 policy (tests/random_policy.py)."""
    return save_random_policy(tmp_path_factory.mktemp("tiny-policy"), hidden_size=64)


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
