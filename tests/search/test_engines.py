"""Loading the value model from a folder or a Hub id (offline, through the Hub cache layout),
and the tokenizer check between the policy and the value model."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch

from tracefactory.errors import ConfigError
from tracefactory.models import load_tokenizer, local_folder
from tracefactory.search.engines import check_tokenizers
from tracefactory.valuemodel.model import ValueModel

HUB_ID = "VGS-AI/DeepSeek-VM-1.5B"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def official_layout(source: Path, target: Path) -> Path:
    """A copy of ``source`` saved as the released checkpoint is: ``Qwen2ForClassifier`` config
    without our ``value_head`` entry (weights already use the official names)."""
    shutil.copytree(source, target)
    config = json.loads((target / "config.json").read_text())
    config["model_type"] = config.pop("value_head")["backbone_model_type"]
    config.pop("auto_map")
    (target / "modeling_value_model.py").unlink()
    labels = {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}
    config.update(architectures=["Qwen2ForClassifier"], id2label=labels,
                  label2id={v: int(k) for k, v in labels.items()})  # fmt: skip
    (target / "config.json").write_text(json.dumps(config))
    return target


def test_value_model_loads_from_a_hub_id_in_the_offline_cache(
    tmp_path, value_model_dir, monkeypatch
):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    repo = cache / f"models--{HUB_ID.replace('/', '--')}"
    official_layout(value_model_dir, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    folder = local_folder(HUB_ID, "evaluate.value_model")
    assert Path(folder) == repo / "snapshots" / COMMIT
    sequences = [[3, 4, 5, 6], [7, 8]]
    released = ValueModel.from_pretrained(folder).values(sequences)
    ours = ValueModel.from_pretrained(value_model_dir).values(sequences)
    assert released == pytest.approx(ours, abs=1e-6)
    half = ValueModel.from_pretrained(folder, dtype=torch.bfloat16)
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}


def test_unknown_value_model_is_one_clear_config_error(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match="cannot get Hub model"):
        local_folder("no-such-org/no-such-model", "evaluate.value_model")


def test_value_model_with_another_vocabulary_is_refused(tmp_path, policy_dir, value_model_dir):
    policy_tokenizer = load_tokenizer(str(policy_dir))
    assert check_tokenizers(str(policy_dir), policy_tokenizer, str(value_model_dir))
    other = shutil.copytree(value_model_dir, tmp_path / "other")
    tokenizer = copy.deepcopy(load_tokenizer(str(value_model_dir)))  # the loader caches
    tokenizer.add_tokens(["<not-in-the-policy>"])
    tokenizer.save_pretrained(other)
    with pytest.raises(ConfigError, match="tokenizer hash"):
        check_tokenizers(str(policy_dir), policy_tokenizer, str(other))


def test_engines_run_the_value_model_in_bfloat16(tmp_path, policy_dir, value_model_dir):
    from tracefactory.search.config import EvaluateConfig
    from tracefactory.search.engines import build_engines, policy_vocabulary
    from tracefactory.search.interfaces import ScoreItem

    config = EvaluateConfig(
        value_model=str(value_model_dir), value_dtype="bfloat16", value_cache_tokens=32,
        policy={"model": str(policy_dir)}, grader={"workers": 1},
    )  # fmt: skip
    with build_engines(config) as engines:
        scorer = engines.scorer
        assert {p.dtype for p in scorer.value_model.parameters()} == {torch.bfloat16}
        assert scorer.max_cache_tokens == 32
        values = scorer.score([ScoreItem(1, 0, 3, (5, 6, 7, 8)), ScoreItem(2, 0, 3, (5, 6, 7, 9))])
        assert all(0.0 < v < 1.0 for v in values)
    assert policy_vocabulary(config) == check_tokenizers(
        str(policy_dir), load_tokenizer(str(policy_dir)), str(value_model_dir)
    )
