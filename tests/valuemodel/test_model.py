"""ValueModel: backbones, padding-invariant values, cached scoring, save/load, official layout."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from transformers import AutoModelForCausalLM, Qwen2Model, Qwen2PreTrainedModel

from tracefactory.errors import ConfigError
from tracefactory.valuemodel.model import ValueModel, pad_right

SEQUENCES = [[1, 5, 9, 2, 33, 7], [1, 4], [1, 8, 8, 8, 8, 8, 8, 8, 8, 12, 40], [3]]


def one_by_one(model, sequences):
    return [float(model.success_probs(torch.tensor([s]))[0, -1]) for s in sequences]


@pytest.fixture(scope="module")
def model(qwen2_policy):
    torch.manual_seed(0)
    return ValueModel.from_policy(qwen2_policy, dropout=0.05)


def test_from_policy_keeps_backbone_and_drops_lm_head(model, qwen2_policy):
    policy = AutoModelForCausalLM.from_pretrained(qwen2_policy)
    ours = model.state_dict()
    assert torch.equal(ours["model.embed_tokens.weight"], policy.model.embed_tokens.weight)
    assert torch.equal(
        ours["model.layers.1.mlp.up_proj.weight"], policy.model.layers[1].mlp.up_proj.weight
    )
    assert not any(k.startswith("lm_head") for k in ours)
    assert {k for k in ours if k.startswith("score")} == {"score.0.weight", "score.2.weight"}


def test_values_of_padded_batch_equal_unbatched(model):
    values = model.values(SEQUENCES, max_batch_tokens=24)  # forces several batches
    assert values == pytest.approx(one_by_one(model, SEQUENCES), abs=1e-5)


def test_left_padding_gives_the_same_probs_as_right_padding(model):
    ids, mask = pad_right(SEQUENCES[:3])
    right = model.success_probs(ids, mask)  # (B, T)
    for row, seq in enumerate(SEQUENCES[:3]):
        left_ids = torch.zeros_like(ids[row : row + 1])
        left_mask = torch.zeros_like(mask[row : row + 1])
        left_ids[0, -len(seq) :] = torch.tensor(seq)
        left_mask[0, -len(seq) :] = 1
        left = model.success_probs(left_ids, left_mask)[0, -len(seq) :]
        assert torch.allclose(left, right[row, : len(seq)], atol=1e-5)


def test_forward_with_cache_matches_full_forward(model):
    full = model.success_probs(torch.tensor([SEQUENCES[2]]))  # (1, T)
    prefix, rest = torch.tensor([SEQUENCES[2][:4]]), torch.tensor([SEQUENCES[2][4:]])
    first, cache = model.forward_with_cache(prefix, torch.ones_like(prefix))
    second, cache = model.forward_with_cache(rest, torch.ones(1, full.shape[1]).long(), cache)
    assert torch.allclose(torch.cat([first, second], 1), full, atol=1e-5)
    assert cache.get_seq_length() == full.shape[1]


def test_dropout_acts_in_training_only(model):
    ids = torch.tensor([SEQUENCES[0]])
    model.train()
    torch.manual_seed(3)
    noisy, _ = model(ids)
    model.eval()
    assert not torch.allclose(noisy, model(ids)[0])
    assert torch.equal(model(ids)[0], model(ids)[0])


def test_saved_folder_gives_identical_values_in_a_fresh_process(model, tmp_path):
    model.save_pretrained(tmp_path / "vm")
    config = json.loads((tmp_path / "vm" / "config.json").read_text())
    assert config["value_head"]["class_names"] == ["wrong", "correct", "incomplete"]
    assert config["value_head"]["success_class"] == 1
    assert (tmp_path / "vm" / "tokenizer.json").is_file()  # copied from the policy folder
    script = (
        "import json, sys; from tracefactory.valuemodel.model import ValueModel;"
        f"m = ValueModel.from_pretrained({str(tmp_path / 'vm')!r});"
        f"print(json.dumps(m.values({SEQUENCES!r})))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == model.values(SEQUENCES)


def test_llama_backbone_trains_saves_and_loads(llama_policy, tmp_path):
    model = ValueModel.from_policy(llama_policy)
    assert type(model.model).__name__ == "LlamaModel"
    ids, mask = pad_right(SEQUENCES)
    logits, _ = model(ids, mask)  # (B, T, 3)
    logits.sum().backward()
    assert model.score[0].weight.grad is not None
    model.save_pretrained(tmp_path / "vm")
    again = ValueModel.from_pretrained(tmp_path / "vm")
    assert again.values(SEQUENCES) == model.values(SEQUENCES)


class Qwen2ForClassifier(Qwen2PreTrainedModel):
    """The paper's class (value-guided-search, classifier_lib.py), inference path only."""

    def __init__(self, config):
        super().__init__(config)
        self.model = Qwen2Model(config)
        self.score = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size, bias=False),
            nn.ReLU(),
            nn.Linear(config.hidden_size, config.num_labels, bias=False),
        )
        self.post_init()

    def forward(self, input_ids, attention_mask=None):
        hidden = self.model(input_ids, attention_mask=attention_mask).last_hidden_state
        return torch.softmax(self.score(hidden).float(), dim=-1)[:, :, 1]  # success_probs


def test_official_qwen2_classifier_checkpoint_loads_with_reference_outputs(qwen2_policy, tmp_path):
    config = Qwen2Model.config_class.from_pretrained(qwen2_policy, num_labels=3)
    torch.manual_seed(7)
    official = Qwen2ForClassifier(config).eval()
    official.save_pretrained(tmp_path / "official")
    saved = load_file(tmp_path / "official" / "model.safetensors")
    assert {"score.0.weight", "score.2.weight", "model.embed_tokens.weight"} <= set(saved)
    with torch.no_grad():
        reference = [float(official(torch.tensor([s]))[0, -1]) for s in SEQUENCES]
    loaded = ValueModel.from_pretrained(tmp_path / "official")
    assert loaded.head["num_classes"] == 3 and loaded.head["bias"] is False
    assert loaded.values(SEQUENCES) == pytest.approx(reference, abs=1e-6)


def test_folder_without_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        ValueModel.from_pretrained(tmp_path)


def test_plain_causal_lm_folder_is_not_a_value_model(qwen2_policy):
    with pytest.raises(ConfigError, match="not a value model"):
        ValueModel.from_pretrained(qwen2_policy)


def test_saved_folder_loads_by_hub_id_offline_and_in_the_official_layout(model, tmp_path):
    """A Hub id resolves through the documented Hub cache layout; no absolute path is saved."""
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    snapshot = tmp_path / "hub" / "models--my-org--value-model" / "snapshots" / commit
    model.save_pretrained(snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(commit)
    config = json.loads((snapshot / "config.json").read_text())
    assert "_name_or_path" not in config and str(tmp_path) not in json.dumps(config)
    script = (
        "import json; from tracefactory.valuemodel.model import ValueModel;"
        "m = ValueModel.from_pretrained('my-org/value-model');"
        f"print(json.dumps(m.values({SEQUENCES!r})))"
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ, **env}
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == model.values(SEQUENCES)

    # The official Qwen2ForClassifier config (no value_head) over the same weights.
    config["model_type"] = config.pop("value_head")["backbone_model_type"]
    config.pop("auto_map")
    config["architectures"] = ["Qwen2ForClassifier"]
    config["attention_dropout"] = 0.05
    (snapshot / "config.json").write_text(json.dumps(config))
    official = ValueModel.from_pretrained(snapshot)
    assert official.values(SEQUENCES) == pytest.approx(model.values(SEQUENCES), abs=1e-6)
