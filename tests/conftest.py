"""Test-wide settings: offline (Hub and datasets), quiet, and no inherited Ray cluster.

Constants and helpers every test folder shares (the repository root, the shared benchmark files,
a subprocess environment) are in ``tests/locations.py``; fixtures shared within one folder are in
that folder's ``conftest.py``.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.pop("RAY_ADDRESS", None)
