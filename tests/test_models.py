"""Resolving a model or dataset reference: a local folder, or a Hub id through the Hub cache."""

import pytest

from tracefactory.errors import ConfigError
from tracefactory.models import local_folder


def test_a_local_folder_is_itself(tmp_path):
    assert local_folder(str(tmp_path), "train.dataset", repo_type="dataset") == tmp_path


@pytest.mark.parametrize("reference", ["not-a-hub-id", "a/b/c", "file.txt"])
def test_neither_folder_nor_hub_id_names_the_parameter(tmp_path, reference):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"^train\.dataset '.*' is neither a dataset folder"):
        local_folder(str(tmp_path / reference), "train.dataset", repo_type="dataset")


def test_a_hub_id_out_of_reach_says_how_to_fix_it(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        ConfigError, match="cannot get Hub model 'org/nope'.*point evaluate.value_model"
    ):
        local_folder("org/nope", "evaluate.value_model")
