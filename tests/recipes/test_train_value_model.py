"""The value-model recipe on a tiny Qwen2 backbone and a synthetic labels table (CPU)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from locations import REPO
from safetensors.torch import load_file
from value_datasets import synthetic_dataset, tiny_backbone

from tracefactory.errors import ConfigError
from tracefactory.recipes import train_value_model
from tracefactory.valuemodel.model import ValueModel
from tracefactory.valuemodel.schedule import learning_rate
from tracefactory.valuemodel.synthetic import synthetic_rows

RECIPE = REPO / "train" / "train_value_model.py"  # the script a checkout runs (and torchrun)


def make_run(tmp_path: Path, num_problems: int, **train) -> Path:
    """A tiny backbone, the dataset folder of synthetic labels, and params.yaml training on it."""
    hash_ = tiny_backbone(tmp_path / "policy")
    synthetic_dataset(tmp_path, synthetic_rows(num_problems, seed=1), hash_)
    section = {
        "dataset": str(tmp_path / "dataset"),
        "datasets_cache": str(tmp_path / "hf_cache"),
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
    params = make_run(tmp_path, 150, epochs=4, eval_every=30, checkpoint_every=0)
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
    assert metrics["train"]["max_steps"] == metrics["train"]["steps"]
    assert metrics["train"]["warmup_steps"] == 5
    cfg = train_value_model.load_config(["--params", str(params)])[0]
    steps = metrics["train"]["steps"]
    for point in curve:  # steps counted from 1, as the official loop; the lr that step used
        assert point["lr"] == pytest.approx(learning_rate(point["step"], cfg, steps))
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
    step = torch.load(checkpoint, weights_only=True)["step"]
    assert 0 < step < 60
    resumed = run_recipe(params)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert f"resuming from {checkpoint} at step" in resumed.stderr.read()

    full = load_file(tmp_path / "full" / "model.safetensors")
    again = load_file(tmp_path / "out" / "model" / "model.safetensors")
    assert full.keys() == again.keys()
    for name, tensor in full.items():
        assert torch.allclose(tensor, again[name], atol=1e-6), name


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_trains_from_the_openr1_vm_config_of_a_copied_folder(tmp_path):
    params = make_run(tmp_path, 30, max_steps=3, eval_every=0, checkpoint_every=0)
    copied = tmp_path / "elsewhere" / "vm-data"
    shutil.copytree(tmp_path / "dataset", copied)
    assert not list(copied.rglob("_manifest.json"))
    metrics = train_value_model.main(
        ["--params", str(params), "--set", f"train.dataset={copied}",
         "--set", "train.dataset_config=openr1_vm", "--set", "train.max_length=40"]
    )  # fmt: skip
    assert metrics["train"]["steps"] == 3
    assert metrics["train"]["rows_truncated"] > 0  # counted, not dropped
    counts = metrics["train"]
    assert counts["rows_read"] == 240
    assert counts["rows_train"] + counts["rows_val"] + counts["dropped_rollin_too_long"] == 240
    saved = json.loads((tmp_path / "out" / "model" / "config.json").read_text())
    assert "_name_or_path" not in saved and str(tmp_path) not in json.dumps(saved)
    card = (tmp_path / "out" / "model" / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["license"] == "apache-2.0" and front["library_name"] == "transformers"
    assert "| pairwise_accuracy |" in card and "ValueModel.from_pretrained" in card
    assert (tmp_path / "out" / "model" / "calibration.png").is_file()


@pytest.mark.parametrize("threads", [1, 2])
def test_two_runs_give_bit_identical_weights(tmp_path, threads):
    """Also with two torch threads (the embedded default's training uses both cores): a fixed
    thread count splits every kernel's work the same way each time."""
    params = make_run(
        tmp_path, 30, max_steps=6, eval_every=3, checkpoint_every=0, num_threads=threads
    )
    for name in ("a", "b"):
        train_value_model.main(
            ["--params", str(params), "--set", f"train.out_dir={tmp_path / name}"]
        )
    first, second = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert first.keys() == second.keys()
    for key, tensor in first.items():
        assert torch.equal(tensor, second[key]), key


def test_train_seed_changes_the_weights_and_not_the_data(tmp_path):
    params = make_run(tmp_path, 30, max_steps=4, eval_every=0, checkpoint_every=0)
    runs = {}
    for name, seed in (("unset", None), ("run_seed", 1234), ("other", 7)):
        sets = [f"train.out_dir={tmp_path / name}", f"train.reports_dir={tmp_path / name / 'r'}"]
        sets += [] if seed is None else [f"train.seed={seed}"]
        argv = ["--params", str(params), *(arg for s in sets for arg in ("--set", s))]
        runs[name] = train_value_model.main(argv)
    unset, other = _weights(tmp_path / "unset"), _weights(tmp_path / "other")
    same = _weights(tmp_path / "run_seed")
    assert all(torch.equal(unset[k], same[k]) for k in unset)  # default: the run seed (1234)
    assert not all(torch.equal(unset[k], other[k]) for k in unset)
    # The same data: the same rows trained on, the same validation rows and baseline.
    data_keys = ("rows", "baseline_loss", "val_success_rate", "train_success_rate")
    assert {k: runs["unset"]["val"][k] for k in data_keys} == {
        k: runs["other"]["val"][k] for k in data_keys
    }
    counts = {k: v for k, v in runs["unset"]["train"].items() if k.startswith(("rows", "dropped"))}
    assert counts == {k: runs["other"]["train"][k] for k in counts}
    # And no stage that makes data depends on the train section.
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in ("problems", "rollin", "rollout", "verify", "label", "dataset"):
        assert "train" not in stages[stage].get("params", []), stage


def test_changed_data_starts_fresh_and_a_finished_run_is_not_redone(tmp_path, caplog):
    params = make_run(tmp_path, 30, max_steps=4, eval_every=0, checkpoint_every=2)
    train_value_model.main(["--params", str(params)])
    model_file = tmp_path / "out" / "model" / "model.safetensors"
    written = model_file.stat().st_mtime_ns
    caplog.set_level("INFO")
    train_value_model.main(["--params", str(params)])
    assert "nothing to do" in caplog.text and model_file.stat().st_mtime_ns == written

    # New labels (another split): the finished checkpoint belongs to other data.
    caplog.clear()
    rows = synthetic_rows(30, seed=1, val_fraction=0.5)
    synthetic_dataset(tmp_path / "new", rows, tiny_backbone(tmp_path / "new_policy"))
    shutil.rmtree(tmp_path / "dataset")
    shutil.copytree(tmp_path / "new" / "dataset", tmp_path / "dataset")
    with pytest.raises(ConfigError, match="training data changed"):
        train_value_model.main(["--params", str(params), "--set", "train.resume=required"])
    train_value_model.main(["--params", str(params)])
    assert "not resuming" in caplog.text and "training data changed" in caplog.text
    assert "resuming from" not in caplog.text.replace("not resuming from", "")
    assert _weights(tmp_path / "out" / "model").keys()
    assert model_file.stat().st_mtime_ns != written


class _Payload:
    """Unpickling this runs code: it creates the file named by ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_checkpoint_never_runs_code(tmp_path):
    params = make_run(tmp_path, 30, max_steps=2, eval_every=0)
    checkpoint = tmp_path / "out" / "checkpoints" / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True)
    marker = tmp_path / "pwned"
    torch.save({"step": 1, "model": _Payload(marker)}, checkpoint)
    with pytest.raises(ConfigError, match="not a checkpoint this recipe wrote"):
        train_value_model.main(["--params", str(params)])
    assert not marker.exists()


def test_hub_dataset_id_is_read_from_the_hub_cache_offline(tmp_path):
    """A dataset id resolves through the documented Hub cache layout, with no network."""
    params = make_run(tmp_path, 30, max_steps=2, eval_every=0, checkpoint_every=0)
    commit, hub_id = "0123456789abcdef0123456789abcdef01234567", "my-org/vm-data"
    repo = tmp_path / "hub" / "datasets--my-org--vm-data"
    shutil.copytree(tmp_path / "dataset", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    done = subprocess.run(
        [sys.executable, str(RECIPE), "--params", str(params), "--set", f"train.dataset={hub_id}"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "dataset my-org/vm-data (default" in done.stderr
    missing = subprocess.run(
        [sys.executable, str(RECIPE), "--params", str(params), "--set", "train.dataset=org/nope"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert missing.returncode != 0
    assert "cannot get Hub dataset 'org/nope'" in missing.stderr
    absent = subprocess.run(
        [sys.executable, str(RECIPE), "--params", str(params), "--set", "train.dataset=/nowhere"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert "is neither a dataset folder nor a Hub id" in absent.stderr
    assert "Traceback" not in missing.stderr


def run_torchrun(params: Path, *overrides: str) -> subprocess.Popen:
    """The recipe under ``torchrun --nproc_per_node=2`` on CPU (gloo)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(RECIPE), "--params", str(params), *overrides,
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.integration
def test_two_ranks_train_to_the_weights_of_one_process_with_the_same_global_batch(tmp_path):
    # Without dropout: its masks are drawn per rank, so two ranks cannot match one process.
    params = make_run(
        tmp_path, 30, max_steps=4, eval_every=0, checkpoint_every=0, dropout=0.0,
        attention_dropout=0.0,
    )  # fmt: skip
    ddp = run_torchrun(params, "--set", f"train.out_dir={tmp_path / 'ddp'}")
    assert ddp.wait(timeout=600) == 0, ddp.stderr.read()
    train_value_model.main(["--params", str(params), "--set", f"train.out_dir={tmp_path / 'one'}"])
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "ddp")
    # Only the order of float additions differs (per-rank sums, then the all-reduce).
    for key, tensor in one.items():
        assert torch.allclose(tensor, two[key], rtol=1e-4, atol=1e-5), key


@pytest.mark.integration
def test_a_killed_rank_resumes_to_the_same_weights(tmp_path):
    params = make_run(tmp_path, 30, max_steps=60, eval_every=0, checkpoint_every=3)
    full = run_torchrun(
        params, "--set", f"train.out_dir={tmp_path / 'full'}", "--set", "train.checkpoint_every=0",
        "--set", f"train.checkpoint_dir={tmp_path / 'full_ckpt'}",
    )  # fmt: skip
    assert full.wait(timeout=600) == 0, full.stderr.read()
    checkpoint = tmp_path / "out" / "checkpoints" / "checkpoint.pt"
    killed = run_torchrun(params)
    while not checkpoint.exists() and killed.poll() is None:
        time.sleep(0.02)
    workers = subprocess.run(
        ["pgrep", "-P", str(killed.pid)], capture_output=True, text=True
    ).stdout.split()
    assert workers, "the run finished before a rank could be killed"
    os.kill(int(workers[-1]), signal.SIGKILL)  # one rank dies; torchrun stops the other
    assert killed.wait(timeout=120) != 0
    assert 0 < torch.load(checkpoint, weights_only=True)["step"] < 60
    resumed = run_torchrun(params)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    assert "resuming from" in resumed.stderr.read()
    full_weights, again = _weights(tmp_path / "full"), _weights(tmp_path / "out" / "model")
    for key, tensor in full_weights.items():
        assert torch.allclose(tensor, again[key], atol=1e-6), key


def test_the_official_settings_train_bf16_weights_on_adjacent_pairs_keeping_empty_rows(tmp_path):
    """sampler=official, precision=bf16, keep_rows_without_rollout, the official lr indexing."""
    params = make_run(
        tmp_path, 40, sampler="official", precision="bf16", keep_rows_without_rollout=True,
        lr_schedule="official", max_length=24, max_steps=4, warmup_steps=1, eval_every=0,
        checkpoint_every=4,
    )  # fmt: skip
    metrics = train_value_model.main(["--params", str(params)])
    assert metrics["train"]["rows_train_no_rollout_tokens"] > 0  # kept: zero loss, in the mean
    assert "dropped_rollin_too_long" in metrics["train"]  # ... but never in validation
    weights = load_file(tmp_path / "out" / "model" / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    state = torch.load(tmp_path / "out" / "checkpoints" / "checkpoint.pt", weights_only=True)
    moments = [s["exp_avg"] for s in state["optimizer"]["state"].values()]
    assert moments and all(m.dtype == torch.bfloat16 for m in moments)  # AdamW on bf16 params
    curve = json.loads((tmp_path / "out" / "reports" / "curve.json").read_text())
    assert curve[-1]["step"] == 4 and curve[-1]["lr"] == pytest.approx(1e-4)  # exactly min_lr


def test_training_logs_one_line_per_interval_with_its_eta(tmp_path, caplog):
    params = make_run(tmp_path, 30, max_steps=6, log_every=2, eval_every=0, checkpoint_every=0)
    caplog.set_level("INFO")
    train_value_model.main(["--params", str(params)])
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [line.split(" |")[0] for line in steps] == ["step 2/6", "step 4/6", "step 6/6"]
    assert all(" | eta " in line for line in steps) and steps[-1].count("eta 0:00:00") == 1
    assert not [r for r in caplog.records if r.name == "tracefactory.stats"]  # no second line
