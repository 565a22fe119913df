"""``lcl push``: upload a run's ``model/`` folder, with its model card, to the Hugging Face Hub.

    from lcl.hub import push
    url = push("runs/isear", "me/minilm-isear-lcl", private=True)

The card (``model/README.md``, :mod:`lcl.model_card`) is written first when it is missing, and
rewritten for the repository's name when it is still the one ``lcl`` generated (a card whose
marker line was deleted is uploaded as it is). The token is ``token=``, else the one
``huggingface_hub`` finds (``HF_TOKEN``, ``huggingface-cli login``).
"""

from __future__ import annotations

import re
from pathlib import Path

from lcl.model_card import RunFolderError, is_generated, read_run, write_model_card

# what an upload leaves out: editor and atomic-write leftovers
IGNORE_PATTERNS = [".*", "**/.*", "*.tmp"]

_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")


def push(
    run_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Create ``repo_id`` (a model repository; kept if it exists) and upload ``RUN_DIR/model``.

    Returns the URL of the commit. Raises :class:`~lcl.model_card.RunFolderError` (a
    ``ValueError``) for a folder that is not a finished run or has no ``model/``.
    """
    from huggingface_hub import HfApi

    run = Path(run_dir)
    if not _REPO_ID.match(repo_id):
        raise RunFolderError(f"invalid repository id {repo_id!r}: give NAME or OWNER/NAME")
    read_run(run)  # a finished run, or one line saying why not
    model_dir = run / "model"
    if not (model_dir / "config.json").is_file():
        raise RunFolderError(f"{run} has no model/ folder with a config.json to upload")
    card = model_dir / "README.md"
    if not card.exists() or is_generated(card):
        write_model_card(run, repo_id=repo_id)
    api = HfApi(token=token)
    api.create_repo(
        repo_id, token=token, private=True if private else None, repo_type="model", exist_ok=True
    )  # None: the account's default visibility
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(model_dir),
        repo_type="model",
        token=token,
        commit_message=commit_message or f"Upload {run.name} trained with lcl",
        ignore_patterns=IGNORE_PATTERNS,
    )
    return str(getattr(commit, "commit_url", None) or commit)
