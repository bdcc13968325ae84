"""The training command is deterministic for a seed and writes a loadable HF model folder."""

import subprocess
import sys

from tracefactory.toyworld.card import load_policy
from tracefactory.toyworld.train_policy import TinyPolicyTrainConfig, train_tiny_policy

TINY = dict(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, batch_size=4, steps=3)


def test_same_seed_gives_identical_weights_and_other_seed_differs(tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train_tiny_policy(TinyPolicyTrainConfig(seed=seed, weak_step=None, **TINY), tmp_path / name)
    weights = {name: (tmp_path / name / "model.safetensors").read_bytes() for name in "abc"}
    assert weights["a"] == weights["b"]
    assert weights["a"] != weights["c"]


def test_weak_checkpoint_is_written_and_loads_like_a_hub_model(tmp_path):
    config = TinyPolicyTrainConfig(weak_step=2, **TINY)
    summary = train_tiny_policy(config, tmp_path / "final", tmp_path / "weak")
    assert summary["parameters"] > 0
    model, tokenizer = load_policy(tmp_path / "weak")
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert (tmp_path / "weak" / "model.safetensors").read_bytes() != (
        tmp_path / "final" / "model.safetensors"
    ).read_bytes()


def test_a_bad_option_is_one_error_line_and_nothing_is_written(tmp_path):
    out, weak = tmp_path / "policy", tmp_path / "weak"
    run = subprocess.run(
        [sys.executable, "-m", "tracefactory.cli", "tiny-policy", "train", "--steps", "0",
         "--out", str(out), "--weak-out", str(weak)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: tiny-policy train: steps = 0: Input should be greater than or equal to 1"
    ]
    assert not out.exists() and not weak.exists()
