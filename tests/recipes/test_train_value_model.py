"""The value-model recipe on a tiny Qwen2 backbone and a synthetic labels table (CPU)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import Qwen2Config, Qwen2ForCausalLM

from tracefactory.errors import ConfigError
from tracefactory.valuemodel.model import ValueModel
from tracefactory.valuemodel.synthetic import synthetic_rows, write_synthetic_labels

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "train" / "train_value_model.py"
sys.path.insert(0, str(RECIPE.parent))
import train_value_model  # noqa: E402


def make_run(tmp_path: Path, num_problems: int, **train) -> Path:
    torch.manual_seed(0)
    config = Qwen2Config(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=64,
    )  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(tmp_path / "policy")
    write_synthetic_labels(tmp_path / "labels", synthetic_rows(num_problems, seed=1))
    section = {
        "labels_dir": str(tmp_path / "labels"),
        "init_from": str(tmp_path / "policy"),
        "out_dir": str(tmp_path / "out" / "model"),
        "checkpoint_dir": str(tmp_path / "out" / "checkpoints"),
        "reports_dir": str(tmp_path / "out" / "reports"),
        "batch_size": 16,
        "warmup_steps": 5,
        **train,
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": section}))
    return tmp_path / "params.yaml"


def test_trained_model_beats_the_constant_baseline_and_ranks_pairs(tmp_path):
    params = make_run(tmp_path, 150, epochs=3, eval_every=30, checkpoint_every=0)
    metrics = train_value_model.main(["--params", str(params)])
    val = metrics["val"]
    assert val["brier"] < val["baseline_brier"]
    assert val["loss"] < val["baseline_loss"]
    assert val["pairwise_accuracy"] > 0.65 and val["pairwise_pairs"] > 50
    reports = tmp_path / "out" / "reports"
    on_disk = json.loads((reports / "metrics.json").read_text())
    assert on_disk["val"]["brier"] == pytest.approx(val["brier"])
    curve = json.loads((reports / "curve.json").read_text())
    assert [c["step"] for c in curve][-1] == metrics["train"]["steps"]
    assert json.loads((reports / "calibration.json").read_text())[0]["points"] == "all_positions"
    model = ValueModel.from_pretrained(tmp_path / "out" / "model")
    assert model.head["dropout"] == 0.05


def test_unknown_or_bad_key_is_a_config_error(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train: {}\n")
    with pytest.raises(ConfigError, match="batch_sise"):
        train_value_model.load_config(["--params", str(params), "batch_sise=4"])
    with pytest.raises(ConfigError, match="max_lr"):
        train_value_model.load_config(["--params", str(params), "train.max_lr=-1"])


def run_recipe(params: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, str(RECIPE), "--params", str(params), *overrides],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.integration
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    params = make_run(tmp_path, 40, max_steps=60, eval_every=0, checkpoint_every=5)
    uninterrupted = run_recipe(
        params,
        f"train.checkpoint_dir={tmp_path / 'full_ckpt'}",
        f"train.out_dir={tmp_path / 'full'}",
        "train.checkpoint_every=0",
    )
    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stderr.read()

    checkpoint = tmp_path / "out" / "checkpoints" / "checkpoint.pt"
    killed = run_recipe(params)
    while not checkpoint.exists() and killed.poll() is None:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    step = torch.load(checkpoint, weights_only=False)["step"]
    assert 0 < step < 60
    resumed = run_recipe(params)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert f"resuming from {checkpoint} at step" in resumed.stderr.read()

    full = load_file(tmp_path / "full" / "model.safetensors")
    again = load_file(tmp_path / "out" / "model" / "model.safetensors")
    assert full.keys() == again.keys()
    for name, tensor in full.items():
        assert torch.allclose(tensor, again[name], atol=1e-6), name
