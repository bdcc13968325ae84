"""The value model for plain transformers, copied into each saved folder (modeling_value_model.py).

``AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True)`` builds this
class from ``config.json`` (its ``auto_map``) and loads the trained head with the backbone; the
logits are the three class logits of ``tracefactory.valuemodel.model.ValueModel`` at every
position. The config's ``model_type`` is this file's, not the backbone's, so that without
``trust_remote_code`` transformers refuses the folder instead of loading the backbone's own
token-classification class with a freshly initialised head.

This file imports only torch and transformers: it must run where tracefactory is not installed.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput

MODEL_TYPE = "tracefactory_value_model"
# Keys of config.json that describe the value model, not its backbone.
OWN_KEYS = ("model_type", "auto_map", "architectures", "value_head", "transformers_version")


class ValueModelConfig(PretrainedConfig):
    """The backbone's config fields, flat as in the backbone's own config.json, plus
    ``value_head`` (the head's shape and class names; ``backbone_model_type`` names the
    backbone)."""

    model_type = MODEL_TYPE

    def backbone_config(self) -> PretrainedConfig:
        fields = {k: v for k, v in self.to_dict().items() if k not in OWN_KEYS}
        return AutoConfig.for_model(self.value_head["backbone_model_type"], **fields)


class ValueModelForTokenClassification(PreTrainedModel):
    """Backbone + ``Linear(h, h) -> ReLU -> Linear(h, classes)`` at every position."""

    config_class = ValueModelConfig
    base_model_prefix = "model"

    def __init__(self, config: ValueModelConfig) -> None:
        super().__init__(config)
        head = config.value_head
        hidden, bias = int(head["hidden_size"]), bool(head["bias"])
        self.model = AutoModel.from_config(config.backbone_config())
        self.score = nn.Sequential(
            nn.Linear(hidden, hidden, bias=bias),
            nn.ReLU(),
            nn.Linear(hidden, int(head["num_classes"]), bias=bias),
        )
        self.post_init()

    def forward(
        self, input_ids: Any = None, attention_mask: Any = None, **kwargs: Any
    ) -> TokenClassifierOutput:
        """Class logits ``(B, T, classes)``; P(success) is the softmax at ``success_class``."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        return TokenClassifierOutput(logits=self.score(hidden.last_hidden_state))
