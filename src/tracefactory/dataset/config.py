"""The ``dataset`` and ``publish`` sections of params.yaml."""

from __future__ import annotations

from pydantic import Field

from tracefactory.config import Section


class DatasetConfig(Section):
    """The exported dataset folder (`default`, `openr1_vm` and `text` configs), card and figures."""

    labels_dir: str = "data/labels"
    """input table (schemas/labels.yaml)"""
    problems_dir: str = "data/problems"
    """problem text and gold answer of the `text` config"""
    verdicts_dir: str = "data/verdicts"
    """for the card: what was graded and what was dropped"""
    output_dir: str = "data/dataset"
    """the folder load_dataset reads and publish pushes"""
    rows_per_file: int = Field(20_000, ge=1)
    """default config: labels rows per Parquet file"""
    problems_per_file: int = Field(1_000, ge=1)
    """openr1_vm config: problem rows per file"""
    row_group_bytes: int = Field(128 * 2**20, ge=2**20)
    """Parquet row groups at most this many (Arrow, uncompressed) bytes: the Hub's viewer refuses
    row groups over about 300 MB"""
    file_bytes: int = Field(2**30, ge=2**20)
    """a file ends before a write takes it past this many (Arrow) bytes"""
    pretty_name: str = "tracefactory value-model traces"
    """card title"""
    license: str = "apache-2.0"
    """Hub license id written to the card's front matter"""
    task_categories: list[str] = ["token-classification", "text-generation"]
    """Hub categories"""
    tags: list[str] = ["math", "reasoning", "value-model", "chain-of-thought"]
    """Hub tags"""
    provenance_dirs: list[str] = [
        "data/rollins",
        "data/rollouts",
        "data/verdicts",
        "data/labels",
    ]
    """tables whose content hash and metadata (params hash, tokenizer, packages) the provenance file
    records, beside the labels and verdicts tables"""


_HUB_ID = r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$"  # org/name: no path, no "..", no URL


class PublishConfig(Section):
    """Where `tracefactory publish` pushes the dataset folder (nothing is pushed without a repo)."""

    repo_id: str | None = Field(None, pattern=_HUB_ID)
    """Hub dataset repo ("org/name"); None: only build the folder"""
    private: bool = True
    """visibility of a repo created by publish (an existing one is kept)"""
    revision: str | None = None
    """branch to push to (None: the repo's default branch)"""
    commit_message: str = "Upload dataset built by tracefactory"
    """Hub commit message"""
    model_repo_id: str | None = Field(None, pattern=_HUB_ID)
    """Hub model repo ("org/name") for the value model; None: none"""
    model_dir: str = "models/value_model"
    """the value model folder `train` writes (with its card)"""
