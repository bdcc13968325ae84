"""A labelled run (tables written with ShardWriter, then the real label stage) shared per module."""

import pytest
from pipeline_tables import TableSpec, labelled_run


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    spec = TableSpec(problems=24, hopeless={0, 5}, problem_splits={7: "test"}, seed=3)
    root = tmp_path_factory.mktemp("run")
    return labelled_run(root, spec, val_fraction=0.3, problems_per_shard=5)
