"""Every stage's output is byte-identical for identical inputs and params.

The whole chain (problems, rollin, rollout, verify, label, dataset export) runs twice on a miniature
embedded default, in two different folders, and every file each stage wrote is compared byte for
byte. Two folders also check that where a run happens is not part of what it produces.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from locations import REPO

from tracefactory.dataset.export import export_dataset
from tracefactory.generation.rollin import run_rollin
from tracefactory.generation.rollout import run_rollout
from tracefactory.grading.stage import VerifyStage
from tracefactory.labels.stage import LabelStage
from tracefactory.params import Params, load_params
from tracefactory.problems.stage import ProblemsStage
from tracefactory.stage import run_stage

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
STAGE_FOLDERS = {
    "problems": "data/problems",
    "rollin": "data/rollins",
    "rollout": "data/rollouts",
    "verify": "data/verdicts",
    "label": "data/labels",
    "dataset": "data/dataset",
}


def _run_chain(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, bytes]]:
    """Run every data stage in ``root`` (relative paths, as dvc.yaml does); files by stage."""
    root.mkdir()
    monkeypatch.chdir(root)
    params: Params = load_params(REPO / "params.yaml", MINIATURE)
    run_stage(ProblemsStage(params.problems, params.seed), params.problems.output_dir)
    run_rollin(params.rollin, params.seed)
    run_rollout(params.rollout, params.seed)
    run_stage(VerifyStage(params.verify), params.verify.output_dir)
    run_stage(LabelStage(params.label), params.label.output_dir)
    export_dataset(params.dataset, params)
    return {
        stage: {
            str(p.relative_to(root / folder)): p.read_bytes()
            for p in sorted((root / folder).rglob("*"))
            if p.is_file()
        }
        for stage, folder in STAGE_FOLDERS.items()
    }


def test_every_stage_writes_the_same_bytes_twice(tmp_path, monkeypatch):
    first = _run_chain(tmp_path / "first", monkeypatch)
    second = _run_chain(tmp_path / "second", monkeypatch)
    for stage, files in first.items():
        assert files, f"{stage} wrote nothing"
        assert sorted(second[stage]) == sorted(files), stage
        differing = [name for name in files if second[stage][name] != files[name]]
        assert not differing, f"{stage}: {differing} differ between two identical runs"
