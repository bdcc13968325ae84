"""Push the dataset folder to a Hugging Face Hub dataset repo.

Order matters: the token and the Hub are checked first (``whoami``), so a missing login or an
unreachable Hub fails before anything is built or uploaded. The repo is created if needed (private
by default) and the folder is uploaded resumably: ``upload_large_folder`` where the installed
``huggingface_hub`` has it, else ``upload_folder``, which in huggingface_hub 2.x streams through
hf_xet, commits in batches and skips what a previous interrupted call already committed.

Before anything is sent, the folder is checked against the Hub's repository limits
(``HUB_LIMITS``): a dataset folder that breaks one fails here with the setting to change, not
hours into an upload. Commits per upload are the client's business: huggingface_hub 2.x commits in
adaptive batches and a rerun of an interrupted upload commits only what is missing.

The token comes from ``HF_TOKEN`` or the cached ``hf auth login``; it is passed to the client and
never printed, logged or put in an error message.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tracefactory.dataset.config import PublishConfig
from tracefactory.errors import HubError

logger = logging.getLogger(__name__)

LOGIN_HINT = (
    "set HF_TOKEN to a token with write access (https://huggingface.co/settings/tokens) "
    "or run `hf auth login` (older clients: `huggingface-cli login`)"
)


# https://huggingface.co/docs/hub/repositories-recommendations (files per repo, entries per
# folder, file size; the recommended file size was 5 GB in earlier versions of that page).
HUB_LIMITS = {"files_per_repo": 100_000, "entries_per_folder": 10_000, "file_bytes": 20 * 10**9}


def check_hub_limits(folder: Path) -> int:
    """The number of files ``folder`` would upload, once checked against ``HUB_LIMITS``.

    Raises:
        HubError: naming the limit, where it is broken and the setting that fixes it.
    """
    files = [path for path in folder.rglob("*") if path.is_file()]
    if len(files) > HUB_LIMITS["files_per_repo"]:
        raise HubError(
            f"{folder} holds {len(files):,} files, over the Hub's {HUB_LIMITS['files_per_repo']:,}"
            " per repo: raise dataset.rows_per_file / problems_per_file and rebuild"
        )
    for directory in [folder, *(path for path in folder.rglob("*") if path.is_dir())]:
        entries = sum(1 for _ in directory.iterdir())
        if entries > HUB_LIMITS["entries_per_folder"]:
            raise HubError(
                f"{directory} holds {entries:,} entries, over the Hub's "
                f"{HUB_LIMITS['entries_per_folder']:,} per folder: raise dataset.rows_per_file / "
                "problems_per_file and rebuild"
            )
    for path in files:
        size = path.stat().st_size
        if size > HUB_LIMITS["file_bytes"]:
            raise HubError(
                f"{path} is {size / 1e9:.1f} GB, over the Hub's {HUB_LIMITS['file_bytes'] / 1e9:g}"
                " GB per file: lower dataset.file_bytes and rebuild"
            )
    return len(files)


@dataclass(frozen=True)
class HubSession:
    """A checked token and the account it belongs to."""

    token: str
    user: str
    endpoint: str


def _network_errors() -> tuple[type[BaseException], ...]:
    """Transport errors of whichever HTTP client this huggingface_hub uses."""
    errors: list[type[BaseException]] = [OSError, TimeoutError]
    for module, name in (
        ("httpx", "TransportError"),
        ("httpx2", "TransportError"),
        ("requests", "RequestException"),
    ):
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


@contextlib.contextmanager
def _hub_call(what: str) -> Iterator[None]:
    """Turn the Hub's refusals and transport failures during ``what`` into one ``HubError`` line
    (huggingface_hub's HTTP errors are ``OSError``s, which would otherwise read as a disk problem).
    """
    from huggingface_hub.errors import HfHubHTTPError

    try:
        yield
    except HfHubHTTPError as e:
        status = getattr(e.response, "status_code", "?")
        advice = (
            "the Hub failed on its side: retry later"
            if isinstance(status, int) and status >= 500
            else "check the repo id, the token's write access and the Hub's message"
        )
        raise HubError(
            f"{what}: the Hub answered HTTP {status} ({str(e).splitlines()[0]}); {advice}. "
            f"Rerun the same command to resume: files already uploaded are not sent again"
        ) from None
    except _network_errors() as e:
        raise HubError(
            f"{what}: lost the connection to the Hub ({type(e).__name__}: {e}); rerun the same "
            f"command to resume"
        ) from None


def connect() -> HubSession:
    """Find the token and check it against the Hub (``whoami``) before any work.

    Raises:
        HubError: offline mode is on, no token is configured (with how to log in), the Hub
            rejects it, or the Hub cannot be reached.
    """
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if constants.HF_HUB_OFFLINE:
        raise HubError("HF_HUB_OFFLINE is set: unset it to publish to the Hub")
    token = get_token()
    if not token:
        raise HubError(f"no Hugging Face token found: {LOGIN_HINT}")
    endpoint = constants.ENDPOINT
    try:
        identity = HfApi(endpoint=endpoint).whoami(token=token)
    except HfHubHTTPError as e:
        status = getattr(e.response, "status_code", "?")
        raise HubError(
            f"the Hub at {endpoint} rejected the token (HTTP {status}): {LOGIN_HINT}"
        ) from None
    except _network_errors() as e:
        raise HubError(
            f"cannot reach the Hub at {endpoint} ({type(e).__name__}: {e}); check the network "
            f"or HF_ENDPOINT. Nothing was uploaded."
        ) from None
    return HubSession(token=token, user=str(identity.get("name", "?")), endpoint=endpoint)


def upload_dataset(folder: str | Path, config: PublishConfig, session: HubSession) -> str:
    """Create the dataset repo if needed and upload ``folder`` to it, resumably.

    Returns:
        The repo's URL.

    Raises:
        HubError: the folder is not a built dataset (no card), breaks a Hub limit, or no repo
            is configured.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "README.md").is_file():
        raise HubError(f"{folder} has no README.md: build it first with `tracefactory dataset`")
    if not config.repo_id:
        raise HubError("publish.repo_id is not set: nothing to upload to")
    files = check_hub_limits(folder)
    api = HfApi(endpoint=session.endpoint, token=session.token)
    with _hub_call(f"publishing {folder} to dataset repo {config.repo_id}"):
        url = api.create_repo(
            config.repo_id, repo_type="dataset", private=config.private, exist_ok=True
        )
        logger.info(
            "uploading %s (%d files) to %s as %s", folder, files, config.repo_id, session.user
        )
        if hasattr(api, "upload_large_folder"):
            api.upload_large_folder(
                repo_id=config.repo_id,
                folder_path=folder,
                repo_type="dataset",
                revision=config.revision,
                private=config.private,
            )
        else:
            api.upload_folder(
                repo_id=config.repo_id,
                folder_path=folder,
                repo_type="dataset",
                revision=config.revision,
                commit_message=config.commit_message,
            )
    return str(url)


def upload_model(folder: str | Path, config: PublishConfig, session: HubSession) -> str:
    """Create the model repo ``publish.model_repo_id`` if needed and upload the value model.

    Returns:
        The repo's URL.

    Raises:
        HubError: the folder is not a trained value model (no weights or card), or no model repo
            is configured.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    missing = [
        n for n in ("README.md", "config.json", "model.safetensors") if not (folder / n).is_file()
    ]
    if missing:
        raise HubError(
            f"{folder} has no {missing[0]}: train the value model first (`tracefactory train`)"
        )
    if not config.model_repo_id:
        raise HubError("publish.model_repo_id is not set: nothing to upload the model to")
    api = HfApi(endpoint=session.endpoint, token=session.token)
    with _hub_call(f"publishing {folder} to model repo {config.model_repo_id}"):
        url = api.create_repo(
            config.model_repo_id, repo_type="model", private=config.private, exist_ok=True
        )
        logger.info("uploading %s to %s as %s", folder, config.model_repo_id, session.user)
        api.upload_folder(
            repo_id=config.model_repo_id,
            folder_path=folder,
            repo_type="model",
            revision=config.revision,
            commit_message="Upload value model trained by tracefactory",
        )
    return str(url)
