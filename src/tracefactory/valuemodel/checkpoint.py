"""A training run's checkpoint, bound to everything that determines its weights.

A checkpoint records the run's identity: the ``train`` params that change the weights, the run
seed, the fingerprint of the training data and of the initial weights. Resuming a checkpoint of
another identity would continue training the old run on the new inputs, or (if it had finished)
hand back the old model as if it were the new one; so it is never resumed. The file is loaded with
``weights_only``: tensors and plain containers only, so a crafted checkpoint cannot run code.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from tracefactory.errors import ConfigError, StageInputError
from tracefactory.integrity import verify_folder
from tracefactory.models import model_fingerprint
from tracefactory.valuemodel.config import ResumeMode, TrainConfig

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
# Fields that may change between a run and its resumption (they do not change the weights).
# Where the data lives is not what it is: its content is fingerprinted instead.
RESUME_FREE_FIELDS = {
    "resume", "device", "num_threads", "log_every", "eval_every", "eval_max_rows", "compile",
    "checkpoint_every", "out_dir", "reports_dir", "checkpoint_dir", "micro_batch_tokens",
    "micro_batch_overhead_tokens", "dataset", "revision", "datasets_cache", "license",
}  # fmt: skip


def save_checkpoint(path: Path, state: dict) -> None:
    """Write the checkpoint dict atomically (temp name, rename): a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def run_identity(cfg: TrainConfig, seed: int, data_fingerprint: str) -> dict:
    """Everything that determines the weights: params, run seed, data and initial weights."""
    params = cfg.model_dump(mode="json")
    return {
        "params": {k: v for k, v in params.items() if k not in RESUME_FREE_FIELDS},
        "seed": seed,
        "data": data_fingerprint,
        "init": model_fingerprint(cfg.init_from),
    }


def identity_mismatch(theirs: dict, ours: dict) -> str | None:
    """Why a run recorded as ``theirs`` is not this one (None if it is)."""
    if theirs == ours:
        return None
    changed = [k for k in ours["params"] if theirs.get("params", {}).get(k) != ours["params"][k]]
    if changed:
        key = changed[0]
        was = theirs.get("params", {}).get(key)
        return f"params {changed} differ (e.g. {key}={was!r}, now {ours['params'][key]!r})"
    if theirs.get("seed") != ours["seed"]:
        return f"the run seed differs ({theirs.get('seed')} then, {ours['seed']} now)"
    if theirs.get("data") != ours["data"]:
        return "the training data changed (its fingerprint differs)"
    return "the initial weights (train.init_from) changed"


def load_checkpoint(path: Path, cfg: TrainConfig, identity: dict) -> dict | None:
    """The checkpoint to resume from, or None (start fresh).

    Only tensors and plain containers are unpickled (``weights_only``): a crafted file never runs
    code. A checkpoint of another run is not resumed (with ``resume=required``: an error).

    Raises:
        ConfigError: the file is not a checkpoint this recipe wrote, or ``resume=required``
            and there is no checkpoint of this run.
    """
    if cfg.resume == ResumeMode.NEVER or not path.is_file():
        if cfg.resume == ResumeMode.REQUIRED:
            raise ConfigError(f"train.resume=required, but there is no checkpoint at {path}")
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refusals and corrupt files raise many types
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"{path} is not a checkpoint this recipe wrote ({reason}); it was not loaded: "
            f"delete it to start fresh"
        ) from None
    why = identity_mismatch(state.get("identity", {}), identity)
    if why and cfg.resume == ResumeMode.REQUIRED:
        raise ConfigError(
            f"cannot resume from {path}: {why}; restore what changed, or set "
            f"train.resume=auto to start a fresh run"
        )
    if why:
        logger.warning("not resuming from %s: %s; starting fresh", path, why)
        return None
    logger.info("resuming from %s at step %d", path, state["step"])
    return state


def finished_run(cfg: TrainConfig, identity: dict) -> dict | None:
    """The metrics of a finished run of this identity in out_dir (it is not redone), or None."""
    record = Path(cfg.out_dir) / "training_config.json"
    metrics = Path(cfg.reports_dir) / "metrics.json"
    if cfg.resume == ResumeMode.NEVER or not (record.is_file() and metrics.is_file()):
        return None
    if json.loads(record.read_text()).get("run") != identity:
        return None
    try:
        verify_folder(Path(cfg.out_dir), "it is trained again")
    except StageInputError as e:
        logger.warning("%s", e)
        return None
    logger.info("%s was already trained with these params and data: nothing to do", cfg.out_dir)
    return json.loads(metrics.read_text())
