"""The value model: any transformers decoder backbone plus the paper's per-token class head.

VGS (arXiv 2505.17373, section 3) puts ``Linear(h, h) -> ReLU -> Linear(h, 3)`` on every position
of an R1-Distill-Qwen backbone; class 1 means "the roll-out policy finishes correctly from here",
and the value of a partial trace is the softmax probability of class 1 at its last token.

The weights use the official ``Qwen2ForClassifier`` names (``model.*`` for the backbone,
``score.0.weight`` and ``score.2.weight`` for the head), so a folder saved here and a checkpoint
saved by the paper's code load the same way; ``config.json`` is the backbone's config plus a
``value_head`` entry recording the head and the meaning of each class.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from tracefactory.errors import ConfigError
from tracefactory.integrity import verify_folder
from tracefactory.models import cache_keyword, local_folder, returned_cache
from tracefactory.schemas import CLASS_NAMES, TrajectoryClass
from tracefactory.valuemodel.config import Precision

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
# Files that make a folder's tokenizer loadable; copied from the backbone: the folder is whole.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
)
OFFICIAL_ARCHITECTURE = "Qwen2ForClassifier"


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report (the dropped LM head is expected, not news)."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


def _load_backbone(path: Path, dtype: torch.dtype | None, **config_overrides: Any) -> nn.Module:
    """The backbone of a checkpoint folder, refusing one whose weights lack backbone tensors:
    transformers would initialise them at random (its warning is silenced with the rest of its
    load report, since the dropped LM head is expected).

    Raises:
        ConfigError: naming the folder and the missing tensors.
    """
    from transformers import AutoModel

    try:
        with _quiet_transformers():
            backbone, info = AutoModel.from_pretrained(
                path, dtype=dtype or torch.float32, output_loading_info=True, **config_overrides
            )
    except (OSError, ValueError, SafetensorError) as e:  # a truncated or foreign weights file
        raise ConfigError(
            f"{path}: its weights cannot be loaded ({e}); the file is damaged or incomplete: "
            f"copy or download the checkpoint again"
        ) from e
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise ConfigError(
            f"{path}: its weights lack {len(missing)} backbone tensor(s) (e.g. {missing[:2]}), "
            f"which would be initialised at random; point at a complete checkpoint folder"
        )
    return backbone


def head_config(
    hidden_size: int, num_classes: int = 3, bias: bool = False, dropout: float = 0.0
) -> dict[str, Any]:
    """The ``value_head`` entry of config.json: the head's shape and what its classes mean."""
    return {
        "hidden_size": hidden_size,
        "num_classes": num_classes,
        "bias": bias,
        "dropout": dropout,  # on hidden states, in training only (paper: 0.05)
        "class_names": list(CLASS_NAMES[:num_classes]),
        "success_class": int(TrajectoryClass.CORRECT),
        "value": "softmax probability of success_class at the last token",
    }


class ValueModel(nn.Module):
    """Backbone (a transformers base model, e.g. ``Qwen2Model`` or ``LlamaModel``) + the value head.

    Args:
        backbone: a transformers ``PreTrainedModel`` returning ``last_hidden_state``.
        head: the ``value_head`` entry (see ``head_config``).
    """

    def __init__(self, backbone: nn.Module, head: dict[str, Any]) -> None:
        super().__init__()
        self.model = backbone
        self.head = dict(head)
        hidden, bias = int(head["hidden_size"]), bool(head["bias"])
        self.score_dropout = nn.Dropout(float(head["dropout"]))
        self.score = nn.Sequential(
            nn.Linear(hidden, hidden, bias=bias),
            nn.ReLU(),
            nn.Linear(hidden, int(head["num_classes"]), bias=bias),
        )

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def init_head(self) -> None:
        """Normal(0, initializer_range) weights, zero biases (the official head's ``post_init``)."""
        std = float(getattr(self.config, "initializer_range", 0.02))
        for layer in (self.score[0], self.score[2]):
            nn.init.normal_(layer.weight, mean=0.0, std=std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    # ----- construction and persistence

    @classmethod
    def from_policy(
        cls,
        policy_path: str | Path,
        dropout: float = 0.0,
        dtype: torch.dtype | None = None,
        attention_dropout: float | None = None,
    ) -> ValueModel:
        """A fresh value model whose backbone is a policy checkpoint's (its LM head dropped).

        Args:
            attention_dropout: overrides the backbone config's (the paper trains with 0.05; the
                official trainer passes it to ``from_pretrained``); None keeps the config's.

        Raises:
            ConfigError: if ``policy_path`` is not a folder with a config.json, or its weights
                lack backbone tensors.
        """
        policy_path = _existing_folder(policy_path, "policy checkpoint")
        extra = {} if attention_dropout is None else {"attention_dropout": attention_dropout}
        backbone = _load_backbone(policy_path, dtype, **extra)
        model = cls(backbone, head_config(backbone.config.hidden_size, dropout=dropout))
        model.init_head()
        model.to(backbone.dtype)
        model.source_path = policy_path
        return model

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype | None = None) -> ValueModel:
        """Load a folder saved by ``save_pretrained`` or by the official ``Qwen2ForClassifier``.

        Raises:
            ConfigError: if the folder is missing, its config describes neither layout, or its
                weights lack backbone tensors.
            StageInputError: if a file differs from the folder's ``checksums.json``.
        """
        path = _existing_folder(path, "value model")
        verify_folder(path, "retrain it (`tracefactory train`) or copy it again")
        try:
            raw = json.loads((path / "config.json").read_text())
        except ValueError as e:
            raise ConfigError(f"{path / 'config.json'} is not JSON ({e}); copy it again") from e
        head = raw.get("value_head") or _official_head(raw, path)
        backbone = _load_backbone(path, dtype)
        model = cls(backbone, head)
        head_state = {k.removeprefix("score."): v for k, v in _load_weights(path, "score.").items()}
        model.score.load_state_dict(head_state)
        model.to(backbone.dtype)
        model.source_path = path
        return model

    def save_pretrained(self, path: str | Path, tokenizer_from: str | Path | None = None) -> Path:
        """Write config.json (backbone config + ``value_head``), model.safetensors, tokenizer files.

        Args:
            path: the output folder (created).
            tokenizer_from: folder whose tokenizer files are copied (default: the backbone's).
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        config = self.config.to_dict()
        config.pop("_name_or_path", None)  # a machine path: the folder must load anywhere
        config["architectures"] = ["ValueModel"]
        config["value_head"] = self.head
        config["num_labels"] = int(self.head["num_classes"])
        # The official Qwen2ForClassifier reads its class count from id2label.
        config["id2label"] = dict(enumerate(self.head["class_names"]))
        config["label2id"] = {name: i for i, name in enumerate(self.head["class_names"])}
        (path / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(path / WEIGHTS_NAME), metadata={"format": "pt"})
        source = tokenizer_from or getattr(self, "source_path", None)
        if source is not None:
            for name in TOKENIZER_FILES:
                if (Path(source) / name).is_file() and Path(source).resolve() != path.resolve():
                    shutil.copy2(Path(source) / name, path / name)
        return path

    # ----- inference

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
    ) -> tuple[torch.Tensor, Any]:
        """Class logits at every position, in float32: ``(B, T, num_classes)``, and the KV cache.

        ``attention_mask`` covers the cached tokens plus ``input_ids`` (the transformers
        convention); positions are counted over unmasked tokens, so left, right or no padding give
        the same values.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        new_len = input_ids.shape[1]
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -new_len:]  # (B, T)
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            **{cache_keyword(self.model): past_key_values},
        )
        hidden = self.score_dropout(out.last_hidden_state)  # (B, T, h)
        return self.score(hidden).float(), returned_cache(out) if use_cache else None  # (B, T, C)

    @torch.no_grad()
    def success_probs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """P(success class) at every position: ``(B, T)``, float32."""
        logits, _ = self._eval_forward(input_ids, attention_mask)
        return F.softmax(logits, dim=-1)[..., int(self.head["success_class"])]

    @torch.no_grad()
    def forward_with_cache(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, past_key_values: Any = None
    ) -> tuple[torch.Tensor, Any]:
        """Score new tokens on top of a KV cache: ``(success_probs (B, T_new), past_key_values)``.

        ``attention_mask`` is ``(B, T_past + T_new)``. The returned cache extends the given one (a
        transformers ``Cache``, updated in place): deep-copy it first to branch continuations.
        """
        logits, cache = self._eval_forward(input_ids, attention_mask, past_key_values, True)
        return F.softmax(logits, dim=-1)[..., int(self.head["success_class"])], cache

    def _eval_forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        past_key_values: Any = None,
        use_cache: bool = False,
    ) -> tuple[torch.Tensor, Any]:
        was_training = self.training
        self.eval()
        try:
            return self.forward(input_ids, attention_mask, past_key_values, use_cache)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def values(self, sequences: list[list[int]], max_batch_tokens: int = 16384) -> list[float]:
        """The value (P(success) at the last token) of each token-id sequence, in input order.

        Sequences are sorted by length and right-padded in batches of at most ``max_batch_tokens``
        padded tokens, so similar lengths share a batch and little compute goes to padding.

        Raises:
            ValueError: if a sequence is empty.
        """
        if any(len(seq) == 0 for seq in sequences):
            raise ValueError("values(): every sequence needs at least one token")
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]), reverse=True)
        result = [0.0] * len(sequences)
        start = 0
        while start < len(order):
            longest = len(sequences[order[start]])
            count = max(1, max_batch_tokens // longest)
            chunk = order[start : start + count]
            ids, mask = pad_right([sequences[i] for i in chunk], device=self.device)  # (B, T)
            probs = self.success_probs(ids, mask)  # (B, T)
            last = mask.sum(-1) - 1  # (B,)
            picked = probs.gather(1, last.unsqueeze(1)).squeeze(1)  # (B,)
            for i, value in zip(chunk, picked.tolist(), strict=True):
                result[i] = value
            start += count
        return result


def weights_dtype(precision: Precision) -> torch.dtype:
    """The dtype training stores weights in: bfloat16 for the official ``bf16`` (so AdamW and its
    state run on bfloat16 parameters, as the official trainer), float32 otherwise."""
    return torch.bfloat16 if precision == Precision.BF16 else torch.float32


def pad_right(
    sequences: list[list[int]], pad_id: int = 0, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token-id lists: ``(input_ids (B, T), attention_mask (B, T))``."""
    width = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids.to(device), mask.to(device)


def _existing_folder(path: str | Path, what: str) -> Path:
    """A Hugging Face folder (local, or a Hub model id's snapshot) that holds a config.json."""
    path = local_folder(path, what)
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"{what} folder {path} has no config.json (expected a Hugging Face folder)"
        )
    return path


def _official_head(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """The head of a checkpoint saved by the paper's ``Qwen2ForClassifier`` (no ``value_head``)."""
    if OFFICIAL_ARCHITECTURE not in (raw.get("architectures") or []):
        raise ConfigError(
            f"{path}/config.json has neither a 'value_head' entry nor architectures "
            f"[{OFFICIAL_ARCHITECTURE!r}]: not a value model"
        )
    num_classes = len(raw["id2label"]) if "id2label" in raw else int(raw.get("num_labels", 3))
    has_bias = "score.0.bias" in _load_weights(path, "score.")
    # The official class reuses attention_dropout as the head's dropout.
    return head_config(
        raw["hidden_size"], num_classes, has_bias, float(raw.get("attention_dropout", 0))
    )


def _load_weights(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    """Tensors whose names start with ``prefix`` from a single or sharded safetensors checkpoint."""
    index = path / f"{WEIGHTS_NAME}.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (path / WEIGHTS_NAME).is_file():
        files = [WEIGHTS_NAME]
    else:
        raise ConfigError(f"{path} holds no {WEIGHTS_NAME} (or its .index.json)")
    found: dict[str, torch.Tensor] = {}
    for name in files:
        with safe_open(
            str(path / name), framework="pt"
        ) as shard:  # reads only the tensors asked for
            found.update({k: shard.get_tensor(k) for k in shard.keys() if k.startswith(prefix)})
    if not found:
        raise ConfigError(f"{path}: no '{prefix}*' weights; is this a value-model checkpoint?")
    return found
