"""Models and tokenizers: the one place that resolves a model reference, loads its tokenizer,
identifies its weights and checks two vocabularies are the same.

Token ids are stored as generated and never re-tokenized downstream, so every table holding them
records its tokenizer and a hash of the vocabulary; whatever reads token ids made by another model
(a roll-out policy, the verifier, the value-model trainer, the search) checks the hashes match with
``require_same_tokenizer``.

A model reference is a Hub id, a local folder, or ``tracefactory:<name>`` for a model folder that
ships inside the package (the embedded default's tiny policies, package data under ``toyworld/``).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from tracefactory.errors import ConfigError
from tracefactory.integrity import file_checksum

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

_SHIPPED_PREFIX = "tracefactory:"
_HUB_ID = re.compile(r"[\w-][\w.-]*/[\w.-]+")  # org/name
# Files of a model folder that shape what it generates: config, tokenizer and weights.
MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".txt", ".tiktoken", ".jinja")


_PACKAGE_DIR = Path(__file__).parent
SHIPPED_MODELS: dict[str, Path] = {
    "tiny": _PACKAGE_DIR / "toyworld" / "policy",
    "tiny-weak": _PACKAGE_DIR / "toyworld" / "policy-weak",
}  # package data: model folders that load with from_pretrained like any Hub model


def resolve_model(model: str) -> str:
    """A policy's ``model`` as ``from_pretrained`` takes it: ``tracefactory:<name>`` becomes the
    shipped folder; a Hub id or a path passes through.

    Raises:
        ConfigError: for an unknown shipped name, or a shipped folder that is not there.
    """
    if not model.startswith(_SHIPPED_PREFIX):
        return model
    name = model.removeprefix(_SHIPPED_PREFIX)
    if name not in SHIPPED_MODELS:
        raise ConfigError(f"unknown shipped model {model!r}; known: {sorted(SHIPPED_MODELS)}")
    folder = SHIPPED_MODELS[name]
    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"{model!r} resolves to {folder}, which holds no model (is the package complete?)"
        )
    return str(folder)


def require_model(model: str, what: str) -> None:
    """Check that ``model`` can name a model at all: a shipped name, an existing folder, or a
    string of the Hub id form (whether the Hub has it is found out when it is loaded).

    Raises:
        ConfigError: naming ``what`` (the params key) for a missing local path, which would
            otherwise be reported by transformers as a malformed Hub repo id.
    """
    if model.startswith(_SHIPPED_PREFIX):
        resolve_model(model)
    elif not Path(model).is_dir() and (Path(model).exists() or not _HUB_ID.fullmatch(model)):
        raise ConfigError(
            f"{what} {model!r}: no such model folder, and not a Hub id like org/name; point it "
            f"at a folder holding config.json and the weights, or at a Hub id"
        )


def local_folder(
    reference: str | Path, what: str, repo_type: str = "model", revision: str | None = None
) -> Path:
    """A local folder as is; a Hub id (``org/name``) as its snapshot folder, downloaded or, with
    ``HF_HUB_OFFLINE=1``, taken from the Hub cache (so a repo fetched once resolves by its id).

    Args:
        reference: a folder path or a Hub id.
        what: the parameter it came from (``evaluate.value_model``), named in errors.
        repo_type: ``model`` or ``dataset``.
        revision: the Hub revision (None: the default branch).

    Raises:
        ConfigError: naming ``what`` when ``reference`` is neither a folder nor a Hub id, or the
            Hub id cannot be fetched (offline and not cached, missing, no access).
    """
    if Path(reference).is_dir():
        return Path(reference)
    reference = str(reference)
    if Path(reference).exists() or not _HUB_ID.fullmatch(reference):
        raise ConfigError(
            f"{what} {reference!r} is neither a {repo_type} folder nor a Hub id like org/name"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(reference, repo_type=repo_type, revision=revision))
    except Exception as e:  # huggingface_hub raises many types (offline, missing, auth)
        raise ConfigError(
            f"{what}: no folder {reference!r}, and cannot get Hub {repo_type} {reference!r} "
            f"(revision {revision or 'main'}; offline, it must be in the Hub cache): {e}; "
            f"download it first or point {what} at a local folder"
        ) from e


@functools.cache
def load_tokenizer(model: str) -> PreTrainedTokenizerBase:
    """The tokenizer of ``model`` (``AutoTokenizer``), left-padding for batched generation.

    A local folder whose ``tokenizer_config.json`` pins ``PreTrainedTokenizerFast`` (the tiny
    policy's) is loaded with that class: transformers 5.23's ``AutoTokenizer`` follows the
    ``qwen2`` model type of ``config.json`` instead and returns a ``Qwen2Tokenizer`` that drops
    the spaces and newlines of the character tokenizer.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = resolve_model(model)
    config_file = Path(path) / "tokenizer_config.json"
    if config_file.is_file():
        pinned = json.loads(config_file.read_text()).get("tokenizer_class")
        if pinned == "PreTrainedTokenizerFast":
            return PreTrainedTokenizerFast.from_pretrained(path, padding_side="left")
    return AutoTokenizer.from_pretrained(path, padding_side="left")


def model_fingerprint(model: str) -> str:
    """What identifies a model, for the params hash of the tables it generates.

    A local folder (the shipped tiny policy included) is identified by the full content of the
    files ``from_pretrained`` loads (config, tokenizer, weights; not its README), so retraining
    the policy or swapping a tokenizer file replaces resumable shards. Each file's checksum is
    cached by its identity (size, mtime, ctime, inode): a multi-GB checkpoint is read once, not
    on every run. Where the folder lives does not count. A Hub id identifies itself (pin a
    revision in the id's cache for more).
    """
    folder = Path(resolve_model(model))
    if not folder.is_dir():
        return model
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix in MODEL_FILE_SUFFIXES and not p.name.startswith(".")
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(folder)}:{file_checksum(path)}\n".encode())
    return digest.hexdigest()[:16]


def tokenizer_hash(tokenizer: PreTrainedTokenizerBase) -> str:
    """SHA-256 of the sorted vocabulary (token -> id, added tokens included)."""
    vocab = sorted(tokenizer.get_vocab().items())
    text = json.dumps(vocab, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def require_same_tokenizer(what: str, expected_hash: str, model: str, actual_hash: str) -> None:
    """Refuse to feed token ids of one vocabulary to a model with another.

    Raises:
        ConfigError: naming both sides when the hashes differ.
    """
    if expected_hash != actual_hash:
        raise ConfigError(
            f"{what} was tokenized with a tokenizer of hash {expected_hash[:12]}..., but "
            f"{model!r} has tokenizer hash {actual_hash[:12]}...; token ids cannot be reused "
            f"across vocabularies: use policies that share one tokenizer (as R1-Distill do)"
        )


def cache_keyword(model) -> str:
    """The name of ``model.forward``'s KV-cache argument: ``cache`` from transformers 5.20 on,
    ``past_key_values`` before. The old name is deprecated on new versions (a warning per call),
    and the new one is silently swallowed by ``**kwargs`` on old ones (the cache stays empty), so
    callers ask the model which it takes."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def returned_cache(output):
    """The KV cache a forward pass returned, under either name (see ``cache_keyword``)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values
