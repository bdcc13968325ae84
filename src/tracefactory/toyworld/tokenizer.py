"""The tiny policy's tokenizer: one token per character, built with ``tokenizers``.

Characters are the natural unit here: every digit and operator of a trace is one decision of the
policy, and a value model reads a slip at the exact token where it happens. The vocabulary is all
printable ASCII plus newline, so any problem text encodes without unknown tokens.

Saved in Hugging Face format with ``"tokenizer_class": "PreTrainedTokenizerFast"``: without it,
``AutoTokenizer`` on a folder whose ``config.json`` says ``qwen2`` returns ``Qwen2Tokenizer``, which
drops newlines and spaces of this tokenizer, and the pipeline has one loading
path for Hub models and the tiny policy.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD_TOKEN = "<pad>"
EOS_TOKEN = "<eos>"
UNK_TOKEN = "<unk>"
THINK_TOKENS = ("<think>", "</think>")


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Build the character-level tokenizer (deterministic: same ids on every machine)."""
    specials = [PAD_TOKEN, EOS_TOKEN, UNK_TOKEN]
    chars = ["\n"] + [chr(code) for code in range(32, 127)]
    vocab = {token: i for i, token in enumerate(specials + chars)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    # Every character is its own piece; newline and space included.
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        clean_up_tokenization_spaces=False,
    )
    # Added after the characters so their ids follow the vocabulary; single tokens in any text.
    wrapped.add_tokens(list(THINK_TOKENS), special_tokens=False)
    return wrapped


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, folder: Path) -> None:
    """Save in HF format and pin ``tokenizer_class`` so ``AutoTokenizer`` loads it exactly."""
    tokenizer.save_pretrained(folder)
    config_path = Path(folder) / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
