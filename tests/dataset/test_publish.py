"""`tracefactory publish`: fails fast without a token or a Hub, and only builds without a repo.

Each case runs the real command in a subprocess, so huggingface_hub reads HF_HOME, HF_TOKEN and
HF_ENDPOINT fresh; no test reaches the network (the "Hub" is a closed port on 127.0.0.1).
"""

import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
import yaml
from pipeline_tables import dataset_config

CLOSED_PORT = "http://127.0.0.1:9"


def _publish(tmp_path, labelled, *sets: str, **env: str) -> subprocess.CompletedProcess:
    dataset = dataset_config(labelled, output_dir=str(tmp_path / "dataset"))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"dataset": dataset.model_dump(mode="json")}))
    command = [sys.executable, "-c", "from tracefactory.cli import main; main()", "publish"]
    command += ["--params", str(params), *(a for s in sets for a in ("--set", s))]
    environment = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}  # set by
    # tests/conftest.py; publish must go online (to the closed port)
    environment.update(HF_HOME=str(tmp_path / "hf_home"), TRACEFACTORY_LOG_LEVEL="WARNING", **env)
    return subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )


def test_no_token_fails_fast_saying_how_to_log_in(tmp_path, labelled):
    result = _publish(tmp_path, labelled, "publish.repo_id=someone/traces", HF_TOKEN="")
    assert result.returncode == 2, result.stderr
    assert "no Hugging Face token" in result.stderr
    assert "hf auth login" in result.stderr and "HF_TOKEN" in result.stderr
    assert not (tmp_path / "dataset").exists()  # failed before building anything


def test_unreachable_hub_is_a_clear_error_before_any_upload(tmp_path, labelled):
    fake = "hf_" + "x" * 30
    result = _publish(
        tmp_path,
        labelled,
        "publish.repo_id=someone/traces",
        HF_TOKEN=fake,
        HF_ENDPOINT=CLOSED_PORT,
    )
    assert result.returncode == 2, result.stderr
    assert f"cannot reach the Hub at {CLOSED_PORT}" in result.stderr
    assert "Nothing was uploaded" in result.stderr
    assert fake not in result.stderr + result.stdout  # the token is never shown
    assert not (tmp_path / "dataset").exists()


def test_without_a_repo_it_only_builds_the_folder_and_says_so(tmp_path, labelled):
    result = _publish(tmp_path, labelled, HF_TOKEN="", HF_ENDPOINT=CLOSED_PORT)
    assert result.returncode == 0, result.stderr
    assert "publish.repo_id is not set" in result.stdout
    assert (tmp_path / "dataset" / "README.md").is_file()
    assert (tmp_path / "reports" / "dataset" / "metrics.json").is_file()


def test_offline_mode_is_named_instead_of_a_client_error(tmp_path, labelled):
    result = _publish(
        tmp_path, labelled, "publish.repo_id=someone/traces", HF_TOKEN="hf_fake", HF_HUB_OFFLINE="1"
    )
    assert result.returncode == 2, result.stderr
    assert "HF_HUB_OFFLINE" in result.stderr


def test_model_push_checks_the_token_and_the_hub_before_anything(tmp_path, labelled):
    fake = "hf_" + "y" * 30
    result = _publish(
        tmp_path, labelled, "publish.model_repo_id=someone/value-model", HF_TOKEN=fake,
        HF_ENDPOINT=CLOSED_PORT,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"cannot reach the Hub at {CLOSED_PORT}" in result.stderr
    assert fake not in result.stderr + result.stdout
    no_token = _publish(tmp_path, labelled, "publish.model_repo_id=someone/vm", HF_TOKEN="")
    assert no_token.returncode == 2 and "no Hugging Face token" in no_token.stderr


def test_model_push_refuses_a_folder_that_is_not_a_trained_model(tmp_path):
    from tracefactory.dataset.config import PublishConfig
    from tracefactory.dataset.publish import HubSession, upload_model
    from tracefactory.errors import HubError

    session = HubSession(token="unused", user="someone", endpoint=CLOSED_PORT)
    (tmp_path / "vm").mkdir()
    (tmp_path / "vm" / "config.json").write_text("{}")
    with pytest.raises(HubError, match="no README.md: train the value model first"):
        upload_model(tmp_path / "vm", PublishConfig(model_repo_id="someone/vm"), session)


def _built(folder):
    (folder / "default").mkdir(parents=True)
    (folder / "README.md").write_text("---\n---\n")
    return folder


def test_a_folder_over_the_hubs_entries_per_folder_fails_before_any_network(tmp_path):
    from tracefactory.dataset.config import PublishConfig
    from tracefactory.dataset.publish import HUB_LIMITS, HubError, HubSession, upload_dataset

    folder = _built(tmp_path / "dataset")
    for i in range(HUB_LIMITS["entries_per_folder"] + 1):
        (folder / "default" / f"train-{i:05d}.parquet").touch()
    session = HubSession(token="unused", user="nobody", endpoint=CLOSED_PORT)
    with pytest.raises(HubError, match=r"default holds 10,001 entries.*rows_per_file"):
        upload_dataset(folder, PublishConfig(repo_id="someone/traces"), session)


def test_a_file_over_the_hubs_file_size_fails_before_any_network(tmp_path):
    from tracefactory.dataset.config import PublishConfig
    from tracefactory.dataset.publish import HUB_LIMITS, HubError, HubSession, upload_dataset

    folder = _built(tmp_path / "dataset")
    with open(folder / "default" / "train-00000-of-00001.parquet", "wb") as file:
        file.truncate(HUB_LIMITS["file_bytes"] + 1)  # sparse: no disk used
    session = HubSession(token="unused", user="nobody", endpoint=CLOSED_PORT)
    with pytest.raises(HubError, match=r"over the Hub's 20 GB per file: lower dataset.file_bytes"):
        upload_dataset(folder, PublishConfig(repo_id="someone/traces"), session)


def test_an_exported_folder_is_within_the_hubs_limits(tmp_path, labelled):
    from tracefactory.dataset.export import export_dataset
    from tracefactory.dataset.publish import check_hub_limits

    config = dataset_config(labelled, output_dir=str(tmp_path / "dataset"))
    export_dataset(config)
    assert check_hub_limits(tmp_path / "dataset") > 4  # card, provenance, figures, data files


class _FailingHub(http.server.BaseHTTPRequestHandler):
    """A Hub on loopback that knows the token (``whoami``) and fails every other call with 500."""

    def do_GET(self):  # noqa: N802 - the http.server API
        if "whoami" in self.path:
            self._answer(200, {"name": "tester", "auth": {"type": "access_token"}})
        else:
            self._answer(500, {"error": "Internal Error"})

    def do_POST(self):  # noqa: N802
        self._answer(500, {"error": "Internal Error"})

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_a_hub_server_error_is_named_as_the_hubs_not_as_a_disk_problem(tmp_path, labelled):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FailingHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = _publish(
            tmp_path,
            labelled,
            "publish.repo_id=someone/traces",
            HF_TOKEN="hf_" + "y" * 30,
            HF_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}",
        )
    finally:
        server.shutdown()
    assert result.returncode == 2, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, result.stderr
    assert "HTTP 500" in error[0] and "the Hub failed on its side" in error[0]
    assert "disk" not in error[0]
    assert (tmp_path / "dataset" / "README.md").is_file()  # the built folder is kept
