"""A stage run as the user runs it, in a subprocess we can SIGKILL: start, wait for shards, kill.

Kill-and-resume tests (transformers and vLLM backends) share these, so a killed run is killed the
same way everywhere: the CLI and everything it started (Ray, engines), by pid.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml

from tracefactory.params import Params

CLI = Path(sys.executable).parent / "tracefactory"


def start(stage: str, params: Params, folder: Path) -> subprocess.Popen:
    """``tracefactory <stage>`` with ``params`` written to ``folder``, in its own session."""
    params_file = folder / "params.yaml"
    params_file.write_text(yaml.safe_dump(params.model_dump(mode="json")))
    env = {**os.environ, "TRACEFACTORY_LOG_LEVEL": "WARNING", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen(
        [str(CLI), stage, "--params", str(params_file), "--reports", str(folder / "reports")],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for_shards(
    directory: Path, count: int, process: subprocess.Popen, timeout_s: float = 300
) -> None:
    """Return once ``count`` shards of the run's table have landed; fail if the run died first."""
    deadline = time.monotonic() + timeout_s
    while len(list(directory.glob("*.parquet"))) < count:
        assert process.poll() is None, process.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no shard landed in time"
        time.sleep(0.05)


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL a run we started and every process it started (Ray, vLLM engines), by pid."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    process.kill()
    process.wait()
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def finish(process: subprocess.Popen, timeout_s: float = 400) -> str:
    """The run's log once it exits 0 (its leftover processes killed either way)."""
    try:
        output, _ = process.communicate(timeout=timeout_s)
    finally:
        kill_tree(process)
    assert process.returncode == 0, output.decode()[-3000:]
    return output.decode()
