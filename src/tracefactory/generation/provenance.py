"""What generated a table's tokens, recorded in its metadata (``integrity.GENERATION_KEY``) and
from there in the dataset card and ``PROVENANCE.md``: per policy, the backend and its version, the
model's content fingerprint (a Hub id's resolved snapshot, or a local folder's files) and the
prompt template's text hash."""

from __future__ import annotations

import hashlib
import json
from importlib import metadata as importlib_metadata

from tracefactory.generation.config import PolicyConfig
from tracefactory.generation.templates import TEMPLATES
from tracefactory.models import model_fingerprint


def generation_metadata(policies: list[PolicyConfig]) -> str:
    """JSON list of each policy's engine record (the value of the ``generation`` key)."""
    return json.dumps([_engine_record(p) for p in policies], sort_keys=True)


def _engine_record(policy: PolicyConfig) -> dict[str, str]:
    template = TEMPLATES[policy.template]
    return {
        "policy": policy.name,
        "backend": policy.backend,
        "backend_version": _installed_version(policy.backend),
        "model": policy.model,
        "model_fingerprint": model_fingerprint(policy.model),
        "template": policy.template,
        "template_sha256": hashlib.sha256(template.encode()).hexdigest()[:16],
    }


def _installed_version(package: str) -> str:
    """The version of the backend's package where the run's driver is (Ray workers of a cluster
    are expected to match it; ``package_versions`` records the same environment)."""
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return "not installed on the driver"
