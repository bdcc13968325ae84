"""Tiny backbones with a tokenizer, and published-dataset folders made from synthetic labels.

The folders are written by the real export functions (both configs, the card's front matter), so
the trainer reads what the ``dataset`` stage publishes; only the card's body and figures, which
need a verdicts table, are left out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from tracefactory.dataset.card import front_matter
from tracefactory.dataset.config import DatasetConfig
from tracefactory.dataset.export import write_default, write_openr1_vm
from tracefactory.io import TableReader
from tracefactory.models import load_tokenizer, tokenizer_hash
from tracefactory.valuemodel.synthetic import write_synthetic_labels

TINY = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2,
)  # fmt: skip


def tiny_backbone(path: Path, vocab_size: int = 320) -> str:
    """A random Qwen2 policy with a word-level tokenizer at ``path``; returns its tokenizer hash."""
    torch.manual_seed(0)
    Qwen2ForCausalLM(Qwen2Config(vocab_size=vocab_size, **TINY)).save_pretrained(path)
    vocab = {f"t{i}": i for i in range(vocab_size)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, "t0")))
    tokenizer.save_pretrained(path)
    return tokenizer_hash(load_tokenizer(str(path)))


def export_labels(labels: Path, folder: Path, rows_per_file: int = 200) -> Path:
    """Export a labels table as the dataset folder (``default`` and ``openr1_vm`` configs)."""
    shutil.rmtree(folder, ignore_errors=True)
    table = TableReader(labels)
    config = DatasetConfig(rows_per_file=rows_per_file, problems_per_file=rows_per_file)
    files = {
        "default": write_default(table, folder / "default", config).close()[0],
        "openr1_vm": write_openr1_vm(table, folder / "openr1_vm", config).close()[0],
    }
    (folder / "README.md").write_text(front_matter(files, table.num_rows, DatasetConfig()))
    return folder


def synthetic_dataset(root: Path, rows: list[dict], tokenizer: str) -> tuple[Path, Path]:
    """(labels table, dataset folder) of ``rows`` under ``root``, tokenized with ``tokenizer``."""
    labels = write_synthetic_labels(root / "labels", rows, tokenizer_hash=tokenizer)
    return labels, export_labels(labels, root / "dataset")
