"""The card: Hub front matter, statistics and figures that follow the actual data."""

import shutil
import subprocess

import polars as pl
import yaml
from locations import command_env
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
    assert set(configs) == {"default", "openr1_vm", "text"}
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


def _dvc_add_hashes(tmp_path, tables: dict[str, str]) -> dict[str, str]:
    """What DVC itself records for copies of ``tables`` (``dvc add`` in a throwaway repo)."""
    repo = tmp_path / "dvc-repo"
    repo.mkdir()
    env = command_env()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=repo, check=True, env=env)
    recorded = {}
    for name, folder in tables.items():
        shutil.copytree(folder, repo / name)
        subprocess.run(["dvc", "add", "-q", name], cwd=repo, check=True, env=env)
        recorded[folder] = yaml.safe_load((repo / f"{name}.dvc").read_text())["outs"][0]["md5"]
    return recorded


def test_provenance_hashes_are_this_builds_inputs_as_dvc_records_them(labelled, tmp_path):
    config = dataset_config(labelled)
    export_dataset(config, Params(seed=777))
    card = (labelled / "dataset" / "README.md").read_text()
    provenance = (labelled / "dataset" / "PROVENANCE.md").read_text()
    tables = {"problems": config.problems_dir, "labels": config.labels_dir,
              "verdicts": config.verdicts_dir}  # fmt: skip
    recorded = _dvc_add_hashes(tmp_path, tables)
    for folder, digest in recorded.items():
        assert f"| `{folder}` | `{digest}` |" in provenance
    assert "[PROVENANCE.md](PROVENANCE.md)" in card
    assert "seed: 777" in provenance and "seed: 777" not in card  # the params dump moved
    assert "pyarrow" in provenance and "grader version(s): 1" in card


def test_card_declares_class_labels_decodes_a_row_and_cites_the_paper(labelled, tmp_path):
    import datasets

    export_dataset(dataset_config(labelled))
    loaded = datasets.load_dataset(str(labelled / "dataset"), cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].features["label"].names == ["wrong", "correct", "incomplete"]
    card = (labelled / "dataset" / "README.md").read_text()
    infos = {i["config_name"]: i["features"] for i in _front_matter(card)["dataset_info"]}
    names = {"0": "wrong", "1": "correct", "2": "incomplete"}
    default = {f["name"]: f for f in infos["default"]}
    assert default["label"]["dtype"] == {"class_label": {"names": names}}
    assert default["token_labels"]["list"] == {"class_label": {"names": names}}
    assert {f["name"]: f for f in infos["openr1_vm"]}["labels"]["list"]["class_label"]
    assert "One validation row, decoded:" in card and "load_tokenizer" in card
    assert "## Limitations" in card and "2505.17373" in card.split("## Citation")[1]


def test_with_one_rollout_per_branch_point_the_card_never_calls_branch_value_less_noisy():
    from tracefactory.dataset.card import _branch_value_note
    from tracefactory.dataset.notes import limitations_section
    from tracefactory.dataset.stats import DatasetStats

    def stats(branch_count: int) -> DatasetStats:
        rows = pl.DataFrame({"source": ["synthetic"] * 2, "rollout_policy": ["tiny"] * 2,
                             "branch_count": [1, branch_count]})  # fmt: skip
        return DatasetStats(rows=rows, verdicts=pl.DataFrame())

    single = _branch_value_note(stats(1)) + limitations_section(stats(1))
    assert "less noisy" not in single and "lower-variance target than" not in single
    assert "equals the outcome" in limitations_section(stats(1))
    assert "less noisy" in limitations_section(stats(4))
