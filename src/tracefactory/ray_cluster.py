"""Joining or starting Ray, quietly and safely."""

from __future__ import annotations

import logging
import os
import socket

from tracefactory.config import RayConfig
from tracefactory.errors import ConfigError

logger = logging.getLogger(__name__)

# Ray's defaults print dozens of lines per run, colour worker output with terminal escapes and
# phone home; a data tool's log should show its own progress. These keep Ray's warnings and errors.
# (RAY_BACKEND_LOG_LEVEL is left alone: setting it makes every Ray process announce it.)
_QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DATA_DISABLE_PROGRESS_BARS": "1",
    "RAY_DEDUP_LOGS": "1",
    "RAY_COLOR_PREFIX": "0",
}
# Run in every worker process before it starts work: the workers' log lines then have the same
# timestamped format as the driver's (Ray prefixes them with the actor's name and pid).
_WORKER_SETUP = {"worker_process_setup_hook": "tracefactory.stats.setup_logging"}
_CONNECT_TIMEOUT_S = 10  # a head that does not accept a TCP connection by then is not there


def init_ray(config: RayConfig) -> None:
    """Join the cluster at ``config.address``, or start a fresh local instance when it is None.

    A None address means ``address="local"``, never the ``RAY_ADDRESS`` environment or a cluster
    file left by an earlier head: both hang when that cluster is gone.
    """
    import ray

    if ray.is_initialized():
        return
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    if config.address is None:
        # Token auth (on by default since Ray 2.5x) writes ~/.ray/auth_token on a local start; a
        # private local instance needs no auth.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(
            address="local",
            num_cpus=config.num_cpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
            runtime_env=_WORKER_SETUP,
        )
    else:
        _require_reachable(config.address)
        ray.init(address=config.address, logging_level=logging.WARNING, runtime_env=_WORKER_SETUP)
    resources = ray.cluster_resources()
    logger.info(
        "Ray: %s, %g CPUs, %g GPUs",
        config.address or "local",
        resources.get("CPU", 0),
        resources.get("GPU", 0),
    )


def _require_reachable(address: str) -> None:
    """Fail at once when nothing accepts connections at a ``host:port`` or ``ray://host:port``
    address: ``ray.init`` waits on an unreachable head without a bound. (``auto`` is Ray's to
    resolve.) A ``ray://`` address also needs Ray's client extra.

    Raises:
        ConfigError: naming ``ray.address`` and what to do.
    """
    target = address.removeprefix("ray://")
    if target == "auto" or ":" not in target:
        return
    if address.startswith("ray://"):
        try:
            import grpc  # noqa: F401 - Ray's client runs on grpcio, which only its extra installs
        except ImportError:
            raise ConfigError(
                f"ray.address={address!r} needs Ray's client extra: pip install 'ray[client]'"
            ) from None
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"ray.address={address!r}: no Ray head reachable at {host}:{port} ({e}); start the "
            f"cluster (`ray start --head`), fix the address, or set ray.address to null for a "
            f"local Ray"
        ) from None
