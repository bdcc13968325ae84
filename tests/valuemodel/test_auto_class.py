"""A saved value model loads in plain transformers with its trained head, or not at all."""

import pytest
import torch
from transformers import AutoModelForTokenClassification
from value_datasets import tiny_backbone

from tracefactory.valuemodel.model import ValueModel


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("auto")
    tiny_backbone(root / "policy")
    torch.manual_seed(1)
    model = ValueModel.from_policy(root / "policy")
    return model.save_pretrained(root / "value_model"), model


def test_the_auto_class_loads_the_trained_head_and_gives_the_same_logits(saved):
    folder, model = saved
    loaded = AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True)
    ids = torch.tensor([[5, 17, 42, 99, 3, 250]])
    assert torch.equal(loaded.score[2].weight, model.score[2].weight)
    expected, _ = model.eval()(ids)
    assert torch.allclose(loaded.eval()(input_ids=ids).logits, expected, atol=1e-5)


def test_without_trust_remote_code_the_auto_class_refuses_instead_of_a_fresh_head(saved):
    folder, _ = saved
    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=False)


def test_the_folder_still_loads_as_a_value_model(saved):
    folder, model = saved
    ids = [[5, 17, 42, 99, 3, 250]]
    assert ValueModel.from_pretrained(folder).values(ids) == pytest.approx(model.values(ids))


def test_the_card_names_base_model_dataset_and_metrics_in_the_hub_fields():
    import yaml

    from tracefactory.valuemodel.card import render_model_card
    from tracefactory.valuemodel.config import TrainConfig

    cfg = TrainConfig(init_from="my-org/base-model", dataset="my-org/value-data")
    val = {"loss": 0.3, "baseline_loss": 0.6, "brier": 0.1, "baseline_brier": 0.2, "ece": 0.02,
           "baseline_ece": 0.0, "auroc": 0.9, "pairwise_accuracy": 0.7}  # fmt: skip
    card = render_model_card(cfg, val, [], None)
    meta = yaml.safe_load(card.split("---\n")[1])
    assert (meta["base_model"], meta["datasets"]) == ("my-org/base-model", ["my-org/value-data"])
    result = meta["model-index"][0]["results"][0]
    assert result["dataset"]["type"] == "my-org/value-data"
    assert {m["type"]: m["value"] for m in result["metrics"]} == {
        "loss": 0.3, "brier": 0.1, "ece": 0.02, "auroc": 0.9, "pairwise_accuracy": 0.7
    }  # fmt: skip
