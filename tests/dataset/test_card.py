"""The card: Hub front matter, statistics and figures that follow the actual data."""

import polars as pl
import yaml
from pipeline_tables import TableSpec, dataset_config, labelled_run

from tracefactory.dataset.card import size_category
from tracefactory.dataset.export import export_dataset
from tracefactory.dataset.figures import FIGURE_FILES
from tracefactory.io import TableReader
from tracefactory.params import Params


def _front_matter(card: str) -> dict:
    _, meta, _ = card.split("---\n", 2)
    return yaml.safe_load(meta)


def _build(root, spec, **overrides):
    labelled_run(root, spec, val_fraction=0.3)
    config = dataset_config(root, **overrides)
    export_dataset(config, Params(label={"val_fraction": 0.3}))
    return (root / "dataset" / "README.md").read_text()


def test_front_matter_declares_both_configs_license_and_size(labelled):
    config = dataset_config(labelled, license="cc-by-4.0")
    export_dataset(config)
    meta = _front_matter((labelled / "dataset" / "README.md").read_text())
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert set(configs) == {"default", "openr1_vm"}
    assert configs["default"]["default"] is True
    splits = {f["split"]: f["path"] for f in configs["openr1_vm"]["data_files"]}
    assert splits == {
        "train": "openr1_vm/train-*.parquet",
        "validation": "openr1_vm/validation-*.parquet",
    }
    assert meta["license"] == "cc-by-4.0"
    assert meta["size_categories"] == [size_category(TableReader(labelled / "labels").num_rows)]
    assert "token-classification" in meta["task_categories"]


def test_card_statistics_and_figures_follow_the_data(tmp_path):
    card_a = _build(tmp_path / "a", TableSpec(problems=10, success_rate=0.2, seed=1))
    card_b = _build(tmp_path / "b", TableSpec(problems=14, success_rate=0.8, seed=2))
    assert card_a != card_b
    for root, card in ((tmp_path / "a", card_a), (tmp_path / "b", card_b)):
        labels = pl.from_arrow(TableReader(root / "labels").read())
        correct = labels.filter(pl.col("label") == 1).height
        assert f"| 1 | correct | {correct:,} |" in card
        assert (
            f"- {labels.height:,} roll-outs from {labels['problem_id'].n_unique():,} problems"
            in card
        )
        for name in FIGURE_FILES:
            assert f"(figures/{name}.png)" in card
            assert (root / "dataset" / "figures" / f"{name}.png").stat().st_size > 1000
    figure = "figures/class_balance.png"
    assert (tmp_path / "a" / "dataset" / figure).read_bytes() != (
        tmp_path / "b" / "dataset" / figure
    ).read_bytes()


def test_card_cites_params_dvc_lock_and_package_versions(labelled):
    (labelled / "dvc.lock").write_text(
        yaml.safe_dump(
            {
                "schema": "2.0",
                "stages": {
                    "label": {
                        "cmd": "tracefactory label",
                        "deps": [{"path": "data/verdicts", "md5": "feedc0de.dir"}],
                        "outs": [{"path": "data/labels", "md5": "0ddba11.dir"}],
                    }
                },
            }
        )
    )
    export_dataset(dataset_config(labelled), Params(seed=777))
    card = (labelled / "dataset" / "README.md").read_text()
    assert "| label | dep | `data/verdicts` | `feedc0de.dir` |" in card
    assert "| label | out | `data/labels` | `0ddba11.dir` |" in card
    assert "seed: 777" in card
    assert "pyarrow" in card and "grader version(s): 1" in card
