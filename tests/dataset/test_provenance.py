"""The provenance file names the code that built the dataset; the date goes to the run record, so
a rebuild of identical inputs stays byte-identical."""

import json
from datetime import datetime

from pipeline_tables import dataset_config

from tracefactory.cli import export
from tracefactory.codeversion import code_version
from tracefactory.dataset.provenance import PROVENANCE_FILE, RUN_RECORD
from tracefactory.params import Params


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_a_rebuild_is_byte_identical_and_only_the_run_record_holds_the_date(labelled, tmp_path):
    params = Params(dataset=dataset_config(labelled).model_dump(), label={"val_fraction": 0.3})
    export(params, tmp_path / "first")
    built = _files(labelled / "dataset")
    export(params, tmp_path / "second")
    assert _files(labelled / "dataset") == built

    code = code_version()
    provenance = built[PROVENANCE_FILE].decode()
    assert f"Built by {code.describe()}." in provenance
    record = json.loads((tmp_path / "second" / RUN_RECORD).read_text())
    assert record["source_commit"] == code.source_commit
    assert record["head_commit"] == code.head_commit
    assert record["uncommitted_changes"] == code.uncommitted_changes
    built_at = datetime.fromisoformat(record["built_at"])
    assert built_at.utcoffset() is not None  # a moment, not a local wall-clock reading
    assert built_at.date().isoformat() not in provenance
