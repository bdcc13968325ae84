"""Every stage's output is byte-identical for identical inputs and params, and a change of what a
stage writes never goes unnoticed.

The whole chain (every data stage of ``tracefactory.stages.STAGES``, then the dataset export) runs
twice on a miniature embedded default, in two different folders, and every file each stage wrote is
compared byte for byte. Two folders also check that where a run happens is not part of what it
produces.

Each stage's rows are also held to the golden digest of its version (``golden.py``): rows that
change without a version bump fail here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from golden import check_golden
from locations import REPO

from tracefactory.dataset.export import export_dataset
from tracefactory.params import Params, load_params
from tracefactory.stage import run_stage
from tracefactory.stages import STAGES

pytestmark = pytest.mark.integration

MINIATURE = [
    "problems.sources=[{name: synthetic, type: synthetic, counts: {train: 16, val: 4, test: 4}}]",
    "rollin.samples_per_problem=2",
    "rollin.problems_per_shard=6",
    "rollin.use_ray=false",
    "rollin.sampling.max_response_tokens=48",
    "rollout.cuts_per_rollin=2",
    "rollout.rollins_per_shard=12",
    "rollout.use_ray=false",
    "rollout.sampling.max_response_tokens=48",
    "verify.use_ray=false",
    "verify.grader.workers=1",
    "label.problems_per_shard=5",
    "label.val_fraction=0.25",
]
DATA_STAGES = ("problems", "rollin", "rollout", "verify", "label")  # the evaluation has a recipe


def _run_chain(root: Path) -> dict[str, Path]:
    """Run every data stage in ``root`` (relative paths, as dvc.yaml does); folders by stage."""
    root.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        params: Params = load_params(REPO / "params.yaml", MINIATURE)
        folders = {}
        for name in DATA_STAGES:
            stage = STAGES[name].from_params(params)
            run_stage(stage)
            folders[name] = root / stage.output_dir
        export_dataset(params.dataset, params)
        folders["dataset"] = root / params.dataset.output_dir
    return folders


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> dict[str, Path]:
    return _run_chain(tmp_path_factory.mktemp("chain") / "first")


def test_every_stage_writes_the_same_bytes_twice(first_run, tmp_path):
    second_run = _run_chain(tmp_path / "second")
    for stage, folder in first_run.items():
        files, again = _files(folder), _files(second_run[stage])
        assert files, f"{stage} wrote nothing"
        assert sorted(again) == sorted(files), stage
        differing = [name for name in files if again[name] != files[name]]
        assert not differing, f"{stage}: {differing} differ between two identical runs"


@pytest.mark.parametrize("name", DATA_STAGES)
def test_rows_change_only_with_the_stage_version(first_run, name):
    check_golden(name, first_run[name])
